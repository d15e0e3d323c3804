//! `open360-external-api`: Open360's external HTTP API (the original's port 8080), answering
//! from the other services through the hub as `web-external-api`. `/healthz`, `/readyz` (linked
//! to the hub) and `/metrics` on the same port.
//!
//! ```text
//! cargo run --release --bin open360-external-api -- --hub-url http://127.0.0.1:4000
//! ```

use clap::Parser;
use examples::ops;
use open360_protocol::{
    EXTERNAL_API_LABEL, ExternalApi, ExternalApiConfig, ServiceClient, SocketIoTransport,
};
use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

/// Open360's external API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where the API listens (the original's port 8080).
    #[arg(
        long,
        env = "OPEN360_EXTERNAL_API_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    listen: SocketAddr,
    /// The hub (`http://host:4000`).
    #[arg(long, env = "OPEN360_HUB_URL", default_value = "http://127.0.0.1:4000")]
    hub_url: String,
    /// The hub's token, when it wants one.
    #[arg(long, env = "OPEN360_HUB_TOKEN", hide_env_values = true)]
    hub_token: Option<String>,
    /// For an `https://` hub: a PEM file of the CA certificates to trust instead of the
    /// system's roots (a private CA, or the hub's self-signed certificate).
    #[arg(long, env = "OPEN360_HUB_CA_FILE")]
    hub_ca_file: Option<std::path::PathBuf>,
    /// How long `GET /` waits for each service's status, in milliseconds.
    #[arg(long, env = "OPEN360_STATUS_TIMEOUT_MS", default_value_t = 1000)]
    status_timeout_ms: u64,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("open360-external-api", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let mut config = ExternalApiConfig::default();
    config.listen = args.listen;
    config.status_timeout = Duration::from_millis(args.status_timeout_ms);
    let mut transport = SocketIoTransport::new(args.hub_url, args.hub_token);
    if let Some(ca) = &args.hub_ca_file {
        transport = transport.with_ca_file(ca)?;
    }
    let client = ServiceClient::builder(EXTERNAL_API_LABEL).start(Arc::new(transport));
    let ready = client.link_state();
    let api = ExternalApi::bind(config, client).await?;
    ops::announce("http", api.local_addr()?);
    let routes = ops::ops_routes(metrics).merge(ops::readiness_route(ready));
    api.run(routes, ops::shutdown_signal()).await?;
    Ok(())
}
