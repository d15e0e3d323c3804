//! `open360-chat`: Open360's chat (Socket.IO rooms, the original's port 4002), joined to the hub
//! as `chat-api` when given its URL. `/healthz`, `/readyz` (linked to the hub) and `/metrics`
//! on the same port.
//!
//! ```text
//! cargo run --release --bin open360-chat -- --hub-url http://127.0.0.1:4000
//! OPEN360_CHAT_TOKEN_SECRET=shared-with-the-web-service cargo run --release --bin open360-chat
//! # two nodes, one room space
//! cargo run --release --bin open360-chat -- --redis-url redis://127.0.0.1:6379 --listen 0.0.0.0:4002
//! cargo run --release --bin open360-chat -- --redis-url redis://127.0.0.1:6379 --listen 0.0.0.0:4012
//! ```

use clap::Parser;
use examples::ops;
use open360_protocol::{Chat, ChatConfig, SocketIoTransport, Transport};
use std::{net::SocketAddr, process::ExitCode, sync::Arc};

/// Open360's chat service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where the chat's Socket.IO listens (the original's port 4002).
    #[arg(long, env = "OPEN360_CHAT_LISTEN", default_value = "0.0.0.0:4002")]
    listen: SocketAddr,
    /// The hub (`http://host:4000`); unset, the chat runs alone (no counts told, no questions).
    #[arg(long, env = "OPEN360_HUB_URL")]
    hub_url: Option<String>,
    /// The hub's token, when it wants one.
    #[arg(long, env = "OPEN360_HUB_TOKEN", hide_env_values = true)]
    hub_token: Option<String>,
    /// For an `https://` hub: a PEM file of the CA certificates to trust instead of the
    /// system's roots (a private CA, or the hub's self-signed certificate).
    #[arg(long, env = "OPEN360_HUB_CA_FILE")]
    hub_ca_file: Option<std::path::PathBuf>,
    /// The secret the web service signs chat tokens with; unset, names are taken as claimed.
    #[arg(long, env = "OPEN360_CHAT_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// The longest message, in characters.
    #[arg(long, env = "OPEN360_CHAT_MAX_MESSAGE_CHARS", default_value_t = 500)]
    max_message_chars: usize,
    /// Sustained messages per second per connection.
    #[arg(long, env = "OPEN360_CHAT_MESSAGES_PER_SECOND", default_value_t = 2)]
    messages_per_second: u32,
    /// Redis (7 or later) shared by every chat node of one deployment: rooms, counts and members
    /// span the nodes. Unset, this node is the whole chat, in memory.
    #[arg(long, env = "OPEN360_CHAT_REDIS_URL")]
    redis_url: Option<String>,
    /// What the chat's Redis keys and channels start with.
    #[arg(
        long,
        env = "OPEN360_CHAT_REDIS_PREFIX",
        default_value = "open360:chat:"
    )]
    redis_prefix: String,
    /// How long a node's viewers still count after it last reached Redis (a dead node's leave
    /// the counts this long after), in milliseconds.
    #[arg(long, env = "OPEN360_CHAT_NODE_LEASE_MS", default_value_t = 15_000)]
    node_lease_ms: u64,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("open360-chat", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let mut config = ChatConfig::default();
    config.listen = args.listen;
    config.token_secret = args.token_secret;
    config.max_message_chars = args.max_message_chars;
    config.messages_per_second = args.messages_per_second;
    config.redis_url = args.redis_url;
    config.redis_prefix = args.redis_prefix;
    config.node_lease = std::time::Duration::from_millis(args.node_lease_ms);
    let hub = match args.hub_url {
        Some(url) => {
            let mut transport = SocketIoTransport::new(url, args.hub_token);
            if let Some(ca) = &args.hub_ca_file {
                transport = transport.with_ca_file(ca)?;
            }
            Some(Arc::new(transport) as Arc<dyn Transport>)
        }
        None => None,
    };
    let chat = Chat::bind(config, hub).await?;
    ops::announce("chat", chat.local_addr()?);
    // Ready once linked to the hub, when there is one.
    let ready = chat
        .link_state()
        .unwrap_or_else(|| tokio::sync::watch::channel(true).1);
    let routes = ops::ops_routes(metrics).merge(ops::readiness_route(ready));
    chat.run(routes, ops::shutdown_signal()).await?;
    Ok(())
}
