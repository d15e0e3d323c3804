//! `openspace-backend`: the session backend and its frontend pages (the original's port
//! 5000). Sessions are placed on the rendering servers given by `--server`.
//!
//! ```text
//! cargo run --release --bin openspace-backend -- \
//!   --server "name=render-1,command=ws://10.0.0.7:4699,gui=http://10.0.0.7:4690/frontend/"
//! ```

use clap::Parser;
use examples::ops;
use openspace_supervisor::{Backend, BackendConfig, RenderingServer};
use std::{net::SocketAddr, process::ExitCode, time::Duration};

/// Places OpenSpace sessions on rendering servers and serves the pages that request them.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where the API and pages listen (the original's port 5000).
    #[arg(long, env = "OPENSPACE_BACKEND_LISTEN", default_value = "0.0.0.0:5000")]
    listen: SocketAddr,
    /// A rendering server: `name=…,command=ws://host:4699,gui=http://host:4690/frontend/`
    /// and optionally `,secret=…` (its supervisor's shared secret) and `,signaling=ws://…`
    /// (its signaling server as browsers reach it). Repeat for several.
    #[arg(long = "server", env = "OPENSPACE_SERVERS", value_delimiter = ';')]
    servers: Vec<String>,
    /// A JSON file of rendering servers, beside or instead of `--server`:
    /// `[{"name": …, "command": "ws://…", "gui": "http://…", "secret"?: …, "signaling"?: …}]`.
    #[arg(long, env = "OPENSPACE_SERVERS_FILE")]
    servers_file: Option<std::path::PathBuf>,
    /// Signs session tokens (32 characters or more); unset, one per process.
    #[arg(long, env = "OPENSPACE_SESSION_SECRET", hide_env_values = true)]
    session_secret: Option<String>,
    /// The signaling server's token secret: running sessions' URLs then carry the browser's
    /// signaling token (peer 100 + slot).
    #[arg(long, env = "OPENSPACE_SIGNALING_SECRET", hide_env_values = true)]
    signaling_secret: Option<String>,
    /// How often (milliseconds) a starting instance is polled and servers are checked.
    #[arg(long, env = "OPENSPACE_POLL_MS", default_value_t = 5_000)]
    poll_ms: u64,
    /// A session nobody looks at for this many seconds is stopped.
    #[arg(long, env = "OPENSPACE_IDLE_SECONDS", default_value_t = 1_800)]
    idle_seconds: u64,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("openspace-backend", run(args).await)
}

/// `name=…,command=…,gui=…[,secret=…]`.
fn server(text: &str) -> Result<RenderingServer, String> {
    let field = |key: &str| {
        text.split(',')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
    };
    let missing = |key: &str| format!("--server {text:?} lacks {key}=");
    let mut server = RenderingServer::new(
        field("name").ok_or_else(|| missing("name"))?,
        field("command").ok_or_else(|| missing("command"))?,
        field("gui").ok_or_else(|| missing("gui"))?,
    );
    server.secret = field("secret");
    server.browser_signaling_url = field("signaling");
    Ok(server)
}

/// One entry of `--servers-file`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerEntry {
    name: String,
    command: String,
    gui: String,
    secret: Option<String>,
    signaling: Option<String>,
}

fn servers_file(path: &std::path::Path) -> Result<Vec<RenderingServer>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let entries: Vec<ServerEntry> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let mut server = RenderingServer::new(entry.name, entry.command, entry.gui);
            server.secret = entry.secret;
            server.browser_signaling_url = entry.signaling;
            server
        })
        .collect())
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let mut config = BackendConfig::default();
    config.listen = args.listen;
    config.servers = args
        .servers
        .iter()
        .map(|text| server(text))
        .collect::<Result<_, _>>()?;
    if let Some(path) = &args.servers_file {
        config.servers.extend(servers_file(path)?);
    }
    if config.servers.is_empty() {
        return Err("no rendering server: give --server or --servers-file".into());
    }
    config.session_secret = args.session_secret;
    config.signaling_secret = args.signaling_secret;
    config.poll_interval = Duration::from_millis(args.poll_ms);
    config.idle_session_timeout = Duration::from_secs(args.idle_seconds);
    let backend = Backend::bind(config).await?;
    ops::announce("http", backend.local_addr()?);
    backend
        .run(ops::ops_routes(metrics), ops::shutdown_signal())
        .await?;
    Ok(())
}
