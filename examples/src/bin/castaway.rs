//! `castaway`: the Castaway media server. Streamers connect to `/streamer`, listeners to
//! `/listener` (Socket.IO, headers `id-token` and `livestream-id`), livestreams are created at
//! `POST /api/livestreams`.
//!
//! ```text
//! CASTAWAY_TOKEN_SECRET=change-me PROJECT_ID=my-project cargo run --release --bin castaway
//! ```

use castaway_relay::{CastawayConfig, CastawayServer, Hs256Verifier, store::SqlStore};
use clap::Parser;
use examples::ops;
use std::{net::SocketAddr, process::ExitCode, sync::Arc};

/// Castaway: relays a streamer's audio chunks to its listeners.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where Socket.IO and the HTTP API listen (the original's port 3000).
    #[arg(long, env = "CASTAWAY_LISTEN", default_value = "0.0.0.0:3000")]
    listen: SocketAddr,
    /// The project whose ID tokens are accepted (`aud`; `iss` is Firebase's for it).
    #[arg(long, env = "PROJECT_ID")]
    project_id: String,
    /// The HS256 secret ID tokens are signed with (self-hosting). Firebase's RS256 tokens are
    /// not supported by this version.
    #[arg(long, env = "CASTAWAY_TOKEN_SECRET", hide_env_values = true)]
    token_secret: String,
    /// Where livestreams are kept: `sqlite://<file>` or `postgres://…`.
    #[arg(
        long,
        env = "CASTAWAY_DATABASE_URL",
        default_value = "sqlite://castaway.sqlite3"
    )]
    database_url: String,
    /// Chunks kept for late joiners.
    #[arg(long, env = "CASTAWAY_HISTORY_CHUNKS", default_value_t = 1)]
    history_chunks: usize,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("castaway", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let mut config = CastawayConfig::default();
    config.listen = args.listen;
    config.history_chunks = args.history_chunks;
    config.project_id = Some(args.project_id.clone());
    let verifier = Hs256Verifier::new(args.token_secret.as_bytes(), &args.project_id);
    let store = SqlStore::open(&args.database_url)
        .await
        .map_err(|error| format!("cannot open {}: {error}", args.database_url))?;
    let server = CastawayServer::bind(config, Arc::new(verifier), Arc::new(store)).await?;
    ops::announce("http", server.local_addr()?);
    server
        .run(ops::ops_routes(metrics), ops::shutdown_signal())
        .await?;
    Ok(())
}
