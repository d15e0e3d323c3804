//! The streaming coordinator's part of the demo: a coordinator, an RTMP streaming server and an
//! HLS encoder in this process, with the application's side (key verification, which accepts
//! every key and asks for a recording, and the event callback) served by the demo itself at
//! `/coordinator/…`, and a page listing what the callbacks reported.

use crate::landing::escape;
use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Html,
    routing::{get, post},
};
use coordinator_core::{
    CommandsAuth, Coordinator, CoordinatorConfig, Secret, Webhook, WebhookAuth,
    peers::{ANSWER_TIMEOUT, CoordinatorVerifier, Encoder, EncoderConfig, Uplink, UplinkConfig},
    proto::LinkRole,
    store::SqlStore,
};
use media_ingest::{IngestConfig, IngestServer};
use std::{
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::watch;

/// The most events the page keeps.
const KEPT_EVENTS: usize = 200;

/// What starting the coordinator's part can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorDemoError {
    /// The coordinator did not start.
    #[error("coordinator: {0}")]
    Coordinator(#[from] coordinator_core::Error),
    /// Its store did not open.
    #[error("coordinator store: {0}")]
    Store(#[from] coordinator_core::store::StoreError),
    /// The RTMP server did not start.
    #[error("coordinator RTMP server: {0}")]
    Ingest(#[from] media_ingest::Error),
    /// A socket could not be bound.
    #[error("coordinator: {0}")]
    Io(#[from] std::io::Error),
}

/// The running coordinator chain.
pub struct CoordinatorDemo {
    /// Where publishers connect.
    pub rtmp: SocketAddr,
    /// The routes to mount on the demo's HTTP server (`/coordinator/…`).
    pub routes: Router,
}

#[derive(Default)]
struct Events {
    /// Newest last: (event type, channel, stream, stream type, resolution, index file).
    seen: Mutex<Vec<[String; 6]>>,
}

/// Starts the chain; `demo_url` is where the demo's HTTP server listens (the coordinator's
/// webhooks point there), `data_dir/coordinator` holds its files, `rtmp_listen` is the
/// streaming server's address.
pub async fn start(
    demo_url: &str,
    data_dir: &Path,
    rtmp_listen: SocketAddr,
    shutdown: watch::Receiver<bool>,
) -> Result<CoordinatorDemo, CoordinatorDemoError> {
    let root = std::path::absolute(data_dir.join("coordinator"))?;
    std::fs::create_dir_all(&root)?;
    // A fresh secret per run: only the pieces of this process can open control links.
    let secret = Secret::new(format!("{:032x}", rand::random::<u128>()));
    let mut config = CoordinatorConfig::default();
    config.http_port = 0;
    config.bind_address = [127, 0, 0, 1].into();
    config.control_secret = Some(secret.clone());
    config.log_requests = false;
    config.key_verification = Some(Webhook {
        url: format!("{demo_url}/coordinator/verify"),
        auth: WebhookAuth::None,
    });
    config.event_callback = Some(Webhook {
        url: format!("{demo_url}/coordinator/events"),
        auth: WebhookAuth::None,
    });
    config.callback_retry_interval = Duration::from_secs(1);
    config.commands_auth = Some(CommandsAuth::Bearer {
        token: Secret::new(format!("{:032x}", rand::random::<u128>())),
    });
    let store = SqlStore::sqlite(root.join("coordinator.sqlite3")).await?;
    let coordinator = Coordinator::bind(config, Arc::new(store)).await?;
    let coordinator_url = format!("ws://{}", coordinator.local_addr()?);
    let mut stopping = shutdown.clone();
    tokio::spawn(coordinator.run(Router::new(), async move {
        let _ = stopping.changed().await;
    }));

    let mut ingest = IngestConfig::default();
    ingest.rtmp_listen = rtmp_listen;
    ingest.verify_timeout = ANSWER_TIMEOUT + Duration::from_secs(5);
    let verifier = CoordinatorVerifier::new(ANSWER_TIMEOUT);
    let server = IngestServer::bind(ingest, Arc::new(verifier.clone())).await?;
    let rtmp = server.local_addr();
    let mut link = UplinkConfig::new(coordinator_url.clone(), secret.clone());
    link.headers = vec![
        ("x-external-ip".into(), rtmp.ip().to_string()),
        ("x-custom-port".into(), rtmp.port().to_string()),
    ];
    let (uplink, link_events) = Uplink::spawn(link, LinkRole::RtmpServer, shutdown.clone());
    tokio::spawn(verifier.serve(server.handle(), uplink, link_events, shutdown.clone()));
    let mut stopping = shutdown.clone();
    tokio::spawn(async move {
        let served = server
            .run(async move {
                let _ = stopping.changed().await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the coordinator's RTMP server failed");
        }
    });

    let (uplink, encoder_events) = Uplink::spawn(
        UplinkConfig::new(coordinator_url, secret),
        LinkRole::Encoder,
        shutdown.clone(),
    );
    let mut encoding = EncoderConfig::new(&root);
    encoding.capacity = 4;
    let encoder = Encoder::new(encoding, uplink, encoder_events);
    tokio::spawn(encoder.run(shutdown));

    let events = Arc::new(Events::default());
    let routes = Router::new()
        .route("/coordinator/", get(page))
        .route("/coordinator/verify", post(verify))
        .route("/coordinator/events", post(event))
        .nest_service(
            "/coordinator/files",
            tower_http::services::ServeDir::new(root.clone()),
        )
        .with_state((events, root, rtmp));
    Ok(CoordinatorDemo { rtmp, routes })
}

type DemoState = (Arc<Events>, PathBuf, SocketAddr);

/// The application's key verification: every key may publish, recorded.
async fn verify() -> (StatusCode, [(&'static str, &'static str); 1]) {
    (StatusCode::OK, [("x-record", "true")])
}

async fn event(State((events, _, _)): State<DemoState>, headers: HeaderMap) -> StatusCode {
    let field = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut seen = events
        .seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    seen.push([
        field("x-event-type"),
        field("x-streaming-channel"),
        field("x-streaming-id"),
        field("x-stream-type"),
        field("x-resolution"),
        field("x-index-file"),
    ]);
    let excess = seen.len().saturating_sub(KEPT_EVENTS);
    seen.drain(..excess);
    StatusCode::OK
}

async fn page(State((events, root, rtmp)): State<DemoState>) -> Html<String> {
    let mut rows = String::new();
    let seen = events
        .seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for [kind, channel, stream, stream_type, resolution, index] in seen.iter().rev() {
        // Index files are paths on the shared file system; the demo serves that root.
        let link = Path::new(index)
            .strip_prefix(&root)
            .map(|relative| {
                let url = format!("/coordinator/files/{}", relative.display());
                format!(r#"<a href="{url}">{url}</a>"#)
            })
            .unwrap_or_default();
        let _ = write!(
            rows,
            "<tr><td>{kind}</td><td>{channel}</td><td><code>{stream}</code></td><td>{stream_type}</td><td>{resolution}</td><td>{link}</td></tr>",
            kind = escape(kind),
            channel = escape(channel),
            stream = escape(stream),
            stream_type = escape(stream_type),
            resolution = escape(resolution),
        );
    }
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Streaming coordinator</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .4rem; text-align: left; }}</style></head>
<body><h1>Streaming coordinator</h1>
<p>Publish to the streaming server (any channel and key; this demo's key verification accepts
every key and asks for a recording):</p>
<pre>ffmpeg -re -f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine -c:v libx264 -g 50 -c:a aac -f flv rtmp://{rtmp}/demo/any-key</pre>
<p>The HLS encoder announces each playlist through the event callback below; play one with
<code>ffplay</code> or any HLS player. Newest first.</p>
<table><thead><tr><th>Event</th><th>Channel</th><th>Stream</th><th>Type</th><th>Resolution</th><th>Index file</th></tr></thead>
<tbody>{rows}</tbody></table></body></html>
"#
    ))
}
