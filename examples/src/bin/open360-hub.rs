//! `open360-hub`: Open360's internal API hub. Services connect over Socket.IO under their label
//! (`auth: {service, token}` or the original's `?name=open360:<label>`); every `api-message` is
//! relayed to its target's sockets and logged (`GET /messages?target=&limit=`).
//!
//! ```text
//! cargo run --release --bin open360-hub                                   # port 4000, SQLite log
//! OPEN360_HUB_TOKEN=a-long-shared-secret cargo run --release --bin open360-hub
//! ```

use clap::Parser;
use examples::ops;
use open360_protocol::{Hub, HubConfig, log::SqlLog};
use std::{net::SocketAddr, process::ExitCode, sync::Arc};

/// Open360's internal API hub.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where Socket.IO and `GET /messages` listen (the original's port 4000).
    #[arg(long, env = "OPEN360_HUB_LISTEN", default_value = "0.0.0.0:4000")]
    listen: SocketAddr,
    /// A token every service must present (at least 16 characters); unset, any service joins.
    #[arg(long, env = "OPEN360_HUB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where the message log is kept: `sqlite://<file>` or `postgres://…`.
    #[arg(
        long,
        env = "OPEN360_HUB_DATABASE_URL",
        default_value = "sqlite://open360-hub.sqlite3"
    )]
    database_url: String,
    /// Logged messages kept; older ones are deleted.
    #[arg(long, env = "OPEN360_HUB_LOG_RETENTION", default_value_t = 100_000)]
    log_retention: usize,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("open360-hub", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let mut config = HubConfig::default();
    config.listen = args.listen;
    config.token = args.token;
    config.log_retention = args.log_retention;
    if config.token.is_none() {
        tracing::warn!("no OPEN360_HUB_TOKEN: any service may join and send messages");
    }
    let log = SqlLog::open(&args.database_url)
        .await
        .map_err(|error| format!("cannot open {}: {error}", args.database_url))?;
    let hub = Hub::bind(config, Arc::new(log)).await?;
    ops::announce("hub", hub.local_addr()?);
    hub.run(ops::ops_routes(metrics), ops::shutdown_signal())
        .await?;
    Ok(())
}
