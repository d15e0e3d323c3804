//! `camus`: the Camus server. Rooms at `/`, entry at `/room/<slug>`, signaling on
//! `/room/<slug>/ws`; `/healthz` and `/metrics` on the same port.
//!
//! ```text
//! cargo run --release --bin camus                                     # http://127.0.0.1:5000
//! TURN_HOST=turn.example.com TURN_STATIC_AUTH_SECRET=north cargo run --release --bin camus
//! cargo run --release --bin camus -- --database-url postgres://camus@db/camus --secure-cookies
//! # a cluster: on each server, the same database, Redis and secret
//! … --database-url postgres://camus@db/camus --redis-url redis://10.0.0.5:6379 --secret-key …
//! ```

use camus_signaling::{CamusConfig, CamusServer, IceConfig, SqlStore, TurnConfig};
use clap::Parser;
use examples::ops;
use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

/// Camus: rooms and WebSocket signaling for peer-to-peer video calls.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where HTTP and the signaling WebSockets listen (the original's port 5000).
    #[arg(long, env = "CAMUS_LISTEN", default_value = "0.0.0.0:5000")]
    listen: SocketAddr,
    /// Where the SQLite database and the cookie secret are kept.
    #[arg(long, env = "CAMUS_DATA_DIR", default_value = "./data/camus")]
    data_dir: PathBuf,
    /// Rooms are kept here: `sqlite://<file>` or `postgres://…`. Default: SQLite under the
    /// data directory.
    #[arg(long, env = "CAMUS_DATABASE_URL")]
    database_url: Option<String>,
    /// The secret room cookies are signed with (32 characters or more). Default: one made on
    /// first start and kept in the data directory.
    #[arg(long, env = "CAMUS_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Mark cookies `Secure`: set it when HTTPS is in front.
    #[arg(long, env = "CAMUS_SECURE_COOKIES")]
    secure_cookies: bool,
    /// The guest limit of a room created without one (0 for none).
    #[arg(long, env = "CAMUS_DEFAULT_GUEST_LIMIT", default_value_t = 100)]
    default_guest_limit: u32,
    /// Clients in one room, whatever its guest limit.
    #[arg(long, env = "CAMUS_MAX_CLIENTS_PER_ROOM", default_value_t = 500)]
    max_clients_per_room: u32,
    /// Rooms held by this server.
    #[arg(long, env = "CAMUS_MAX_ROOMS", default_value_t = 10_000)]
    max_rooms: usize,
    /// The largest signaling message, in bytes.
    #[arg(long, env = "CAMUS_MAX_MESSAGE_BYTES", default_value_t = 64 << 10)]
    max_message_bytes: usize,
    /// Sustained messages per second per client.
    #[arg(long, env = "CAMUS_MESSAGES_PER_SECOND", default_value_t = 50)]
    messages_per_second: u32,
    /// Messages a client may send at once above that rate.
    #[arg(long, env = "CAMUS_MESSAGE_BURST", default_value_t = 200)]
    message_burst: u32,
    /// A STUN URL offered to clients (repeat for several). With none, the original's
    /// `STUN_HOST`/`STUN_PORT`/`TURN_*` variables are read.
    #[arg(long = "stun-url", env = "CAMUS_STUN_URLS", value_delimiter = ',')]
    stun_urls: Vec<String>,
    /// A TURN URL with coturn REST credentials (needs `--turn-secret`).
    #[arg(long = "turn-url", env = "CAMUS_TURN_URLS", value_delimiter = ',')]
    turn_urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    #[arg(long, env = "CAMUS_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// How long TURN credentials stay valid, in seconds.
    #[arg(long, env = "CAMUS_TURN_TTL_SECONDS", default_value_t = 6 * 3600)]
    turn_ttl_seconds: u64,
    /// Redis shared by the servers of a cluster: clients of one room on different servers
    /// signal each other. The servers must share the database and `--secret-key` too.
    #[arg(long, env = "CAMUS_REDIS_URL")]
    redis_url: Option<String>,
    /// What the cluster's Redis channel starts with.
    #[arg(long, env = "CAMUS_REDIS_PREFIX", default_value = "camus:")]
    redis_prefix: String,
    /// A cluster server silent this long (milliseconds) is taken as gone: its clients leave
    /// their rooms.
    #[arg(long, env = "CAMUS_SERVER_TIMEOUT_MS", default_value_t = 15_000)]
    server_timeout_ms: u64,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("camus", run(args).await)
}

fn ice(args: &Args) -> Result<IceConfig, Box<dyn std::error::Error>> {
    if args.stun_urls.is_empty() && args.turn_urls.is_empty() {
        return Ok(IceConfig::from_original_variables(|name| {
            std::env::var(name).ok()
        })?);
    }
    let mut ice = IceConfig::default();
    ice.stun_urls = args.stun_urls.clone();
    if let Some((first, rest)) = args.turn_urls.split_first() {
        let secret = args
            .turn_secret
            .clone()
            .ok_or("--turn-url needs --turn-secret (coturn's static-auth-secret)")?;
        let mut turn = TurnConfig::new(first.clone(), secret);
        turn.urls.extend(rest.iter().cloned());
        turn.credential_ttl = Duration::from_secs(args.turn_ttl_seconds);
        ice.turn = Some(turn);
    }
    Ok(ice)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let mut config = CamusConfig::default();
    config.listen = args.listen;
    config.data_dir = args.data_dir.clone();
    config.cookie_secret = args.secret_key.clone();
    config.secure_cookies = args.secure_cookies;
    config.default_guest_limit = args.default_guest_limit;
    config.max_clients_per_room = args.max_clients_per_room;
    config.max_rooms = args.max_rooms;
    config.max_message_bytes = args.max_message_bytes;
    config.messages_per_second = args.messages_per_second;
    config.message_burst = args.message_burst;
    config.ice = ice(&args)?;
    config.redis_url = args.redis_url.clone();
    config.redis_prefix = args.redis_prefix.clone();
    config.server_timeout = Duration::from_millis(args.server_timeout_ms);
    config.validate()?;
    let store = match &args.database_url {
        Some(url) => SqlStore::open(url)
            .await
            .map_err(|error| format!("cannot open {url}: {error}"))?,
        None => SqlStore::open_default(&args.data_dir)
            .await
            .map_err(|error| {
                format!(
                    "cannot open the database in {}: {error}",
                    args.data_dir.display()
                )
            })?,
    };
    let server = CamusServer::bind(config, Arc::new(store)).await?;
    ops::announce("http", server.local_addr()?);
    server
        .run(ops::ops_routes(metrics), ops::shutdown_signal())
        .await?;
    Ok(())
}
