//! `openspace-supervisor`: a rendering server's supervisor. The JSON command API (`START`,
//! `STOP`, `RESOLUTION`, `STATUS`, `SERVER_STATUS`) on a WebSocket (the original's port 4699);
//! each instance is a process run from `--instance-command`; `/healthz`, `/metrics` on the ops
//! port.
//!
//! ```text
//! cargo run --release --bin openspace-supervisor -- \
//!   --instance-command "openspace-test-renderer --api-port {api_port} --webrtc-id {webrtc_id} \
//!     --width {width} --height {height} --signaling-url {signaling_url} --token {token}"
//! ```

use clap::Parser;
use examples::ops;
use openspace_supervisor::{ProcessLauncher, Supervisor, SupervisorConfig, TokenIssuer};
use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

/// Supervises the OpenSpace instances of one rendering server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where the command API listens (the original's port 4699).
    #[arg(
        long,
        env = "OPENSPACE_SUPERVISOR_LISTEN",
        default_value = "0.0.0.0:4699"
    )]
    listen: SocketAddr,
    /// Where `/healthz` and `/metrics` are served.
    #[arg(
        long,
        env = "OPENSPACE_SUPERVISOR_OPS_LISTEN",
        default_value = "127.0.0.1:4698"
    )]
    ops_listen: SocketAddr,
    /// The command run per instance; `{id}`, `{api_port}`, `{webrtc_id}`, `{width}`,
    /// `{height}`, `{signaling_url}` and `{token}` are filled in (no shell).
    #[arg(long, env = "OPENSPACE_INSTANCE_COMMAND")]
    instance_command: String,
    /// Run to resize a running instance (same placeholders); unset, resizing restarts it.
    #[arg(long, env = "OPENSPACE_RESIZE_COMMAND")]
    resize_command: Option<String>,
    /// Instances at once.
    #[arg(long, env = "OPENSPACE_CAPACITY", default_value_t = 3)]
    capacity: u32,
    /// Instance n's API port is this plus n.
    #[arg(long, env = "OPENSPACE_API_PORT_BASE", default_value_t = 4682)]
    api_port_base: u16,
    /// The signaling server instances register with.
    #[arg(
        long,
        env = "OPENSPACE_SIGNALING_URL",
        default_value = "ws://127.0.0.1:8443"
    )]
    signaling_url: String,
    /// The signaling server's token secret: each instance gets a token (`{token}`) for its
    /// peer id, valid a day. Unset, instances get an empty token.
    #[arg(long, env = "OPENSPACE_SIGNALING_SECRET", hide_env_values = true)]
    signaling_secret: Option<String>,
    /// An instance not ready within this many seconds is killed.
    #[arg(long, env = "OPENSPACE_INIT_TIMEOUT_SECONDS", default_value_t = 120)]
    init_timeout_seconds: u64,
    /// Seconds between a stop's terminate and its kill.
    #[arg(long, env = "OPENSPACE_STOP_GRACE_SECONDS", default_value_t = 10)]
    stop_grace_seconds: u64,
    /// When set, every command must carry it as `"secret"`.
    #[arg(long, env = "OPENSPACE_SUPERVISOR_SECRET", hide_env_values = true)]
    shared_secret: Option<String>,
    /// A directory of the Web GUI to serve to browsers (the original's node.js server on 4690).
    #[arg(long, env = "OPENSPACE_GUI_DIR")]
    gui_dir: Option<std::path::PathBuf>,
    /// Where the Web GUI is served, with `--gui-dir`.
    #[arg(long, env = "OPENSPACE_GUI_LISTEN", default_value = "0.0.0.0:4690")]
    gui_listen: SocketAddr,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("openspace-supervisor", run(args).await)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = ops::install_metrics()?;
    let mut config = SupervisorConfig::default();
    config.listen = args.listen;
    config.capacity = args.capacity;
    config.api_port_base = args.api_port_base;
    config.signaling_url = args.signaling_url;
    config.init_timeout = Duration::from_secs(args.init_timeout_seconds);
    config.stop_grace = Duration::from_secs(args.stop_grace_seconds);
    config.shared_secret = args.shared_secret;
    let mut launcher = ProcessLauncher::new(&args.instance_command)?;
    if let Some(resize) = &args.resize_command {
        launcher = launcher.with_resize_command(resize);
    }
    let tokens: TokenIssuer = match args.signaling_secret.clone() {
        Some(secret) => Arc::new(move |peer| {
            let now = openspace_supervisor::token::unix_seconds(std::time::SystemTime::now());
            openspace_supervisor::token::issue(secret.as_bytes(), peer, now + 24 * 3600)
        }),
        None => {
            tracing::warn!("no --signaling-secret: instances cannot register with signaling");
            Arc::new(|_| String::new())
        }
    };
    let supervisor = Supervisor::bind(config, Arc::new(launcher), tokens).await?;
    ops::announce("commands", supervisor.local_addr()?);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let gui = match &args.gui_dir {
        Some(dir) => Some(serve_gui(dir, args.gui_listen, stopping.clone()).await?),
        None => None,
    };
    let ops_server =
        ops::spawn_ops_server(args.ops_listen, ops::ops_routes(metrics), stopping).await?;
    supervisor.run(ops::shutdown_signal()).await?;
    let _ = stop.send(true);
    let _ = ops_server.await;
    if let Some(gui) = gui {
        let _ = gui.await;
    }
    Ok(())
}

/// Serves the Web GUI's files from `dir` on `listen` until `stopping` turns true.
async fn serve_gui(
    dir: &std::path::Path,
    listen: SocketAddr,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, Box<dyn std::error::Error>> {
    if !dir.is_dir() {
        return Err(format!("--gui-dir {} is not a directory", dir.display()).into());
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    ops::announce("gui", listener.local_addr()?);
    let files = axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir));
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, files)
            .with_graceful_shutdown(async move {
                let _ = stopping.changed().await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the Web GUI server failed");
        }
    }))
}
