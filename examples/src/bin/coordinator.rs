//! `coordinator`: the streaming coordinator. Configured by the original's environment variables
//! (`KEY_VERIFICATION_URL`, `EVENT_CALLBACK_URL`, `COMMANDS_API_AUTH`, `CONTROL_SECRET`,
//! `HTTP_PORT`, `BIND_ADDRESS` …; see coordinator-core's README), plus where it keeps its
//! callback outbox.
//!
//! ```text
//! CONTROL_SECRET=change-me HTTP_PORT=8080 cargo run --release --bin coordinator
//! ```

use clap::Parser;
use coordinator_core::{Coordinator, CoordinatorConfig, store::SqlStore};
use examples::ops;
use std::{process::ExitCode, sync::Arc};

/// The streaming coordinator: balances streaming servers over HLS encoders.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where undelivered event callbacks and active streams are kept: `sqlite://<file>` or
    /// `postgres://…`.
    #[arg(
        long,
        env = "COORDINATOR_DATABASE_URL",
        default_value = "sqlite://coordinator.sqlite3"
    )]
    database_url: String,
    /// Log format on stderr; filter with RUST_LOG (LOG_DEBUG=YES means debug).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = match CoordinatorConfig::from_env(std::env::vars()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("coordinator: {error}");
            return ExitCode::FAILURE;
        }
    };
    if config.log_debug && std::env::var_os("RUST_LOG").is_none() {
        ops::init_tracing_with_default(args.log_format, "debug");
    } else {
        ops::init_tracing(args.log_format);
    }
    ops::exit_code("coordinator", run(args, config).await)
}

async fn run(args: Args, config: CoordinatorConfig) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let store = SqlStore::open(&args.database_url)
        .await
        .map_err(|error| format!("cannot open {}: {error}", args.database_url))?;
    let coordinator = Coordinator::bind(config, Arc::new(store)).await?;
    ops::announce("http", coordinator.local_addr()?);
    if let Some(tls) = coordinator.tls_local_addr() {
        ops::announce("https", tls?);
    }
    coordinator
        .run(ops::ops_routes(metrics), ops::shutdown_signal())
        .await?;
    Ok(())
}
