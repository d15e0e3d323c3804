//! `castaway`: the Castaway media server. Streamers connect to `/streamer`, listeners to
//! `/listener` (Socket.IO, headers `id-token` and `livestream-id`), livestreams are created at
//! `POST /api/livestreams`.
//!
//! ```text
//! PROJECT_ID=my-firebase-project cargo run --release --bin castaway            # Firebase ID tokens
//! CASTAWAY_TOKEN_SECRET=change-me PROJECT_ID=my-project cargo run --release --bin castaway  # HS256
//! # a cluster: run this on each node, with one Redis and one PostgreSQL
//! … --redis-url redis://10.0.0.5:6379 --database-url postgres://castaway@10.0.0.6/castaway
//! ```

use castaway_relay::{
    CastawayConfig, CastawayServer, CertSource, FirebaseVerifier, Hs256Verifier, TokenVerifier,
    store::SqlStore,
};
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
    /// For self-hosting: the HS256 secret ID tokens are signed with. Unset: Firebase ID tokens
    /// (RS256, checked against Google's certificates).
    #[arg(long, env = "CASTAWAY_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// Where Firebase's certificates are fetched.
    #[arg(long, env = "FIREBASE_CERTS_URL", default_value = castaway_relay::GOOGLE_CERTS_URL)]
    firebase_certs_url: String,
    /// Read Firebase's certificates (the same JSON) from this file instead.
    #[arg(long, env = "FIREBASE_CERTS_FILE")]
    firebase_certs_file: Option<std::path::PathBuf>,
    /// Where livestreams are kept: `sqlite://<file>` or `postgres://…`.
    #[arg(
        long,
        env = "CASTAWAY_DATABASE_URL",
        default_value = "sqlite://castaway.sqlite3"
    )]
    database_url: String,
    /// Redis shared by the nodes of a cluster: listeners on any node hear a streamer on any
    /// node. The nodes must share the database too (PostgreSQL).
    #[arg(long, env = "CASTAWAY_REDIS_URL")]
    redis_url: Option<String>,
    /// What the cluster's Redis keys and channel start with.
    #[arg(long, env = "CASTAWAY_REDIS_PREFIX", default_value = "castaway:")]
    redis_prefix: String,
    /// How soon, after a node dies, the others end its livestreams (seconds, at least 1).
    #[arg(long, env = "CASTAWAY_CLUSTER_LEASE_SECONDS", default_value_t = 15)]
    cluster_lease_seconds: u64,
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
    config.redis_url = args.redis_url;
    config.redis_prefix = args.redis_prefix;
    config.cluster_lease = std::time::Duration::from_secs(args.cluster_lease_seconds);
    let verifier: Arc<dyn TokenVerifier> = match (&args.token_secret, args.firebase_certs_file) {
        (Some(secret), _) => Arc::new(Hs256Verifier::new(secret.as_bytes(), &args.project_id)),
        (None, Some(file)) => Arc::new(FirebaseVerifier::new(
            args.project_id.clone(),
            CertSource::File(file),
        )?),
        (None, None) => Arc::new(FirebaseVerifier::new(
            args.project_id.clone(),
            CertSource::Url(args.firebase_certs_url.clone()),
        )?),
    };
    let store = SqlStore::open(&args.database_url)
        .await
        .map_err(|error| format!("cannot open {}: {error}", args.database_url))?;
    let server = CastawayServer::bind(config, verifier, Arc::new(store)).await?;
    ops::announce("http", server.local_addr()?);
    server
        .run(ops::ops_routes(metrics), ops::shutdown_signal())
        .await?;
    Ok(())
}
