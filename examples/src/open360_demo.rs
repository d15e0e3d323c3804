//! The whole of Open360 in one process: the hub in-process ([`LocalHub`]), the web service
//! (with the ingest's media on its own port), the RTMP ingest, the chat and the external API.
//! The `open360` binary and the demo start it.

use open360_protocol::{
    Chat, ChatConfig, ExternalApi, ExternalApiConfig, IngestService, IngestServiceConfig, LocalHub,
    ServiceClient, Transport, WebConfig, WebService, media_router, web::store::SqlWebStore,
};
use rand::{Rng, distr::Alphanumeric};
use std::{net::SocketAddr, path::Path, sync::Arc};
use tokio::sync::watch;

/// Where each public part listens.
#[derive(Debug, Clone, Copy)]
pub struct Open360Listen {
    /// The site (and the media under `/media`).
    pub web: SocketAddr,
    /// RTMP publishers.
    pub rtmp: SocketAddr,
    /// The chat's Socket.IO.
    pub chat: SocketAddr,
    /// The external API.
    pub external: SocketAddr,
}

/// The running services' addresses.
#[derive(Debug)]
pub struct Open360Demo {
    /// The site.
    pub web: SocketAddr,
    /// RTMP.
    pub rtmp: SocketAddr,
    /// The chat.
    pub chat: SocketAddr,
    /// The external API.
    pub external: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Open360Demo {
    /// Waits until every service has stopped (after `shutdown`): live streams ended, their VODs
    /// recorded.
    pub async fn stopped(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Why Open360 did not start.
#[derive(Debug, thiserror::Error)]
pub enum Open360DemoError {
    /// A service failed to start.
    #[error(transparent)]
    Service(#[from] open360_protocol::Error),
    /// The web store could not be opened.
    #[error(transparent)]
    Store(#[from] open360_protocol::web::store::WebStoreError),
    /// The data directory could not be made.
    #[error("creating {0}: {1}")]
    DataDir(String, std::io::Error),
    /// A bound address could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Starts every Open360 service, keeping data under `data_dir` (`open360-web.sqlite3`,
/// `media/`), until `shutdown` turns true. `extra` routes (health, metrics) join the site.
pub async fn start(
    listen: Open360Listen,
    data_dir: &Path,
    extra: axum::Router,
    shutdown: watch::Receiver<bool>,
) -> Result<Open360Demo, Open360DemoError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| Open360DemoError::DataDir(data_dir.display().to_string(), e))?;
    let hub: Arc<dyn Transport> = Arc::new(LocalHub::new());
    // Web and chat share this process, so a secret made now is shared by both.
    let secret: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let media_dir = data_dir.join("media");

    let store =
        SqlWebStore::open_sqlite(&data_dir.join(open360_protocol::web::store::DEFAULT_SQLITE_FILE))
            .await?;
    let mut chat = ChatConfig::default();
    chat.listen = listen.chat;
    chat.token_secret = Some(secret.clone());
    let chat = Chat::bind(chat, Some(hub.clone())).await?;
    let chat_addr = chat.local_addr()?;

    let mut ingest = IngestServiceConfig::default();
    ingest.rtmp.rtmp_listen = listen.rtmp;
    ingest.media_dir = media_dir.clone();
    let ingest_client = ServiceClient::builder(open360_protocol::INGEST_LABEL).start(hub.clone());
    let ingest = IngestService::bind(ingest, ingest_client).await?;

    let mut web = WebConfig::default();
    web.listen = listen.web;
    web.chat_token_secret = Some(secret);
    // Browsers find the chat on the site's own host, unless it listens on one address only.
    if chat_addr.ip().is_unspecified() {
        web.chat_port = chat_addr.port();
    } else {
        web.chat_url = Some(format!("http://{chat_addr}"));
    }
    web.rtmp_url = Some(format!("rtmp://{}/live", public(ingest.local_addr())));
    let web = WebService::bind(web, Arc::new(store), Some(hub.clone())).await?;

    let mut external = ExternalApiConfig::default();
    external.listen = listen.external;
    let external_client =
        ServiceClient::builder(open360_protocol::EXTERNAL_API_LABEL).start(hub.clone());
    let external = ExternalApi::bind(external, external_client).await?;

    let (web_addr, rtmp, external_addr) = (
        web.local_addr()?,
        ingest.local_addr(),
        external.local_addr()?,
    );
    let stopped = move || {
        let mut shutdown = shutdown.clone();
        async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        }
    };
    let site = media_router(media_dir).merge(extra);
    let tasks = vec![
        spawn("web", web.run(site, stopped())),
        spawn("chat", chat.run(axum::Router::new(), stopped())),
        spawn("ingest", ingest.run(stopped())),
        spawn("external API", external.run(axum::Router::new(), stopped())),
    ];
    Ok(Open360Demo {
        web: web_addr,
        rtmp,
        chat: chat_addr,
        external: external_addr,
        tasks,
    })
}

fn spawn(
    name: &'static str,
    service: impl Future<Output = Result<(), open360_protocol::Error>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = service.await {
            tracing::error!(%error, "Open360's {name} failed");
        }
    })
}

/// An address to show to people: a wildcard listen address shown as the loopback one.
fn public(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// How a separate Open360 service reaches the hub: the flags `open360-web` and
/// `open360-ingest` share.
#[derive(Debug, Clone, clap::Args)]
pub struct HubArgs {
    /// The hub (`http://host:4000`).
    #[arg(long, env = "OPEN360_HUB_URL", default_value = "http://127.0.0.1:4000")]
    pub hub_url: String,
    /// The hub's token, when it wants one.
    #[arg(long, env = "OPEN360_HUB_TOKEN", hide_env_values = true)]
    pub hub_token: Option<String>,
    /// For an `https://` hub: a PEM file of the CA certificates to trust instead of the
    /// system's roots.
    #[arg(long, env = "OPEN360_HUB_CA_FILE")]
    pub hub_ca_file: Option<std::path::PathBuf>,
}

impl HubArgs {
    /// The Socket.IO transport to the hub these flags name.
    pub fn transport(&self) -> Result<Arc<dyn Transport>, open360_protocol::TransportError> {
        let mut transport =
            open360_protocol::SocketIoTransport::new(self.hub_url.clone(), self.hub_token.clone());
        if let Some(ca) = &self.hub_ca_file {
            transport = transport.with_ca_file(ca)?;
        }
        Ok(Arc::new(transport))
    }
}
