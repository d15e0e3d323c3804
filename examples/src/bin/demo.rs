//! `demo`: every system of the workspace that this build runs, in one process, with embedded
//! defaults, and a landing page listing each with its URL and how to try it.
//!
//! ```text
//! cargo run --release --bin demo            # then open http://127.0.0.1:8000/
//! ```

use clap::Parser;
use examples::{landing, ops};
use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

/// Every system of the live-streaming toolkit in one process.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where the landing page listens. Port 0 picks a free port (printed on stdout).
    #[arg(long, env = "DEMO_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Where the systems keep their data (SQLite databases, HLS files).
    #[arg(long, env = "DEMO_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Where Castaway's relay (Socket.IO and its HTTP API) listens. Port 0 picks a free port.
    #[arg(long, env = "DEMO_CASTAWAY_LISTEN", default_value = "127.0.0.1:3000")]
    castaway_listen: SocketAddr,
    /// Where Camus (its pages and signaling WebSockets) listens. Port 0 picks a free port.
    #[arg(long, env = "DEMO_CAMUS_LISTEN", default_value = "127.0.0.1:5000")]
    camus_listen: SocketAddr,
    /// Where OpenSpace's frontend (and session backend) listens. Port 0 picks a free port.
    #[arg(long, env = "DEMO_OPENSPACE_LISTEN", default_value = "127.0.0.1:5050")]
    openspace_listen: SocketAddr,
    /// OpenSpace instance n's API port is this plus n (two instances).
    #[arg(long, env = "DEMO_OPENSPACE_API_PORT_BASE", default_value_t = 4682)]
    openspace_api_port_base: u16,
    /// Where Open360's site listens. Port 0 picks a free port.
    #[arg(long, env = "DEMO_OPEN360_WEB", default_value = "127.0.0.1:8360")]
    open360_web: SocketAddr,
    /// Where Open360's RTMP ingest listens. Port 0 picks a free port.
    #[arg(long, env = "DEMO_OPEN360_RTMP", default_value = "127.0.0.1:1935")]
    open360_rtmp: SocketAddr,
    /// Where Open360's chat listens. Port 0 picks a free port.
    #[arg(long, env = "DEMO_OPEN360_CHAT", default_value = "127.0.0.1:4002")]
    open360_chat: SocketAddr,
    /// Where Open360's external API listens. Port 0 picks a free port.
    #[arg(long, env = "DEMO_OPEN360_EXTERNAL", default_value = "127.0.0.1:8080")]
    open360_external: SocketAddr,
    /// Where the streaming coordinator's RTMP server listens. Port 0 picks a free port.
    #[arg(long, env = "DEMO_COORDINATOR_RTMP", default_value = "127.0.0.1:1936")]
    coordinator_rtmp: SocketAddr,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: ops::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    // The demo's OpenSpace supervisor runs its instances as this binary.
    if std::env::args().nth(1).as_deref() == Some(examples::openspace_demo::INSTANCE_ARGUMENT) {
        let args = examples::openspace_renderer::Args::parse_from(std::env::args().skip(1));
        ops::init_tracing_with_default(args.log_format, "info,rtc_dtls=error");
        return ops::exit_code(
            "openspace-instance",
            examples::openspace_renderer::run(args).await,
        );
    }
    let args = Args::parse();
    ops::init_tracing(args.log_format);
    ops::exit_code("demo", run(args).await)
}

#[derive(Debug, thiserror::Error)]
enum DemoError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install the metrics recorder: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    #[error("the landing page server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Coordinator(#[from] examples::coordinator_demo::CoordinatorDemoError),
    #[error("open360: {0}")]
    Open360(#[from] examples::open360_demo::Open360DemoError),
    #[error("castaway: {0}")]
    Castaway(#[from] castaway_relay::Error),
    #[error("camus: {0}")]
    Camus(#[from] camus_signaling::Error),
    #[error(transparent)]
    OpenSpace(#[from] examples::openspace_demo::OpenSpaceDemoError),
}

async fn run(args: Args) -> Result<(), DemoError> {
    std::fs::create_dir_all(&args.data_dir).map_err(|source| DemoError::DataDir {
        path: args.data_dir.clone(),
        source,
    })?;
    let metrics = ops::install_metrics()?;
    let mut systems = landing::catalogue();

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| DemoError::Bind {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| DemoError::Bind {
        addr: args.listen,
        source,
    })?;
    ops::announce("landing", addr);
    let (stop, stopping) = tokio::sync::watch::channel(false);

    let base = format!("http://{addr}");
    let coordinator = examples::coordinator_demo::start(
        &base,
        &args.data_dir,
        args.coordinator_rtmp,
        stopping.clone(),
    )
    .await?;
    ops::announce("coordinator-rtmp", coordinator.rtmp);
    landing::set_running(
        &mut systems,
        "coordinator-core",
        format!("{base}/coordinator/"),
        format!(
            "ffmpeg -re -f lavfi -i testsrc2 -f lavfi -i sine -c:v libx264 -c:a aac -f flv rtmp://{}/demo/any-key",
            coordinator.rtmp
        ),
    );

    let open360 = examples::open360_demo::start(
        examples::open360_demo::Open360Listen {
            web: args.open360_web,
            rtmp: args.open360_rtmp,
            chat: args.open360_chat,
            external: args.open360_external,
        },
        &args.data_dir.join("open360"),
        axum::Router::new(),
        stopping.clone(),
    )
    .await?;
    ops::announce("open360", open360.web);
    ops::announce("open360-rtmp", open360.rtmp);
    landing::set_running(
        &mut systems,
        "open360-protocol",
        format!("http://{}/", open360.web),
        format!(
            "sign up, take a stream key from the dashboard, then: ffmpeg -re -f lavfi -i testsrc2 -f lavfi -i sine -c:v libx264 -g 50 -c:a aac -f flv rtmp://{}/live/<stream key>; the external API is http://{}/",
            open360.rtmp, open360.external
        ),
    );

    let castaway =
        examples::castaway_demo::start(args.castaway_listen, &args.data_dir, stopping.clone())
            .await?;
    ops::announce("castaway", castaway.addr);
    landing::set_running(
        &mut systems,
        "castaway-relay",
        format!("http://{}/api/livestreams", castaway.addr),
        format!(
            "io(\"http://{}/streamer\", {{extraHeaders: {{\"id-token\": \"{}\", \"livestream-id\": \"{}\"}}}}), then emit(\"upload\", bytes); listeners: /listener with \"{}\"",
            castaway.addr,
            examples::castaway_demo::ARTIST_TOKEN,
            castaway.livestream,
            examples::castaway_demo::FAN_TOKEN
        ),
    );

    let camus = start_camus(args.camus_listen, &args.data_dir, stopping.clone()).await?;
    ops::announce("camus", camus);
    landing::set_running(
        &mut systems,
        "camus-signaling",
        format!("http://{camus}/"),
        "create a room, then open its address in a second tab (or on a phone on your network): a video call"
            .into(),
    );

    let openspace = examples::openspace_demo::start(
        args.openspace_listen,
        args.openspace_api_port_base,
        stopping.clone(),
    )
    .await?;
    ops::announce("openspace", openspace.frontend);
    landing::set_running(
        &mut systems,
        "openspace-supervisor",
        format!("http://{}/", openspace.frontend),
        "press Start a session: a supervisor launches an instance, which streams a moving test picture to your browser over WebRTC (needs ffmpeg with libvpx)".into(),
    );

    let app = landing::routes(systems.clone())
        .merge(coordinator.routes)
        .merge(ops::ops_routes(metrics));
    println!();
    println!("  Live-streaming toolkit demo: http://{addr}/");
    for system in &systems {
        match &system.availability {
            landing::Availability::Running { url, .. } => println!("  {:<24} {url}", system.name),
            landing::Availability::PartlyBuilt { .. } => println!(
                "  {:<24} partly built, not in the demo yet ({}; see the landing page)",
                system.name, system.crate_name
            ),
            landing::Availability::NotBuiltYet => println!(
                "  {:<24} not built yet ({})",
                system.name, system.crate_name
            ),
        }
    }
    println!("  data: {}", args.data_dir.display());
    println!();

    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            ops::shutdown_signal().await;
            let _ = stop.send(true);
        })
        .await
        .map_err(DemoError::Serve)?;
    // Open360's live streams end with their VODs recorded.
    open360.stopped().await;
    tracing::info!("stopped");
    Ok(())
}

/// Camus on `listen`, its rooms and cookie secret under `data_dir/camus`.
async fn start_camus(
    listen: SocketAddr,
    data_dir: &std::path::Path,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<SocketAddr, camus_signaling::Error> {
    let mut config = camus_signaling::CamusConfig::default();
    config.listen = listen;
    config.data_dir = data_dir.join("camus");
    let store = camus_signaling::SqlStore::open_default(&config.data_dir).await?;
    let server = camus_signaling::CamusServer::bind(config, std::sync::Arc::new(store)).await?;
    let addr = server.local_addr()?;
    tokio::spawn(async move {
        let stopped = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(error) = server.run(axum::Router::new(), stopped).await {
            tracing::error!(%error, "Camus failed");
        }
    });
    Ok(addr)
}
