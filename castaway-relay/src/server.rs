//! The relay as a server: Socket.IO and the HTTP API on one port.

use crate::{
    CastawayConfig, Error, api,
    cluster::{Cluster, Feeds},
    relay::{FanOut, Overflow, Shared},
    store::LivestreamStore,
    verify::TokenVerifier,
};
use axum::Router;
use socketioxide::SocketIo;
use std::{future::Future, net::SocketAddr, sync::Arc};
use tokio::net::TcpListener;

/// A bound relay, ready to [`run`](CastawayServer::run).
pub struct CastawayServer {
    listener: TcpListener,
    router: Router,
    /// The cluster's tasks, stopped with the server.
    tasks: Tasks,
}

struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl CastawayServer {
    /// Validates `config`, joins the cluster when it has a Redis URL, clears
    /// `streamerConnected` flags a crash left behind, and binds `config.listen` (port 0 picks
    /// a free one).
    pub async fn bind(
        config: CastawayConfig,
        verifier: Arc<dyn TokenVerifier>,
        store: Arc<dyn LivestreamStore>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let cluster = match &config.redis_url {
            Some(url) => {
                Some(Cluster::connect(url, &config.redis_prefix, config.cluster_lease).await?)
            }
            None => None,
        };
        let reset = match &cluster {
            None => store.reset_streamers().await?,
            Some((cluster, _)) => clear_stale_flags(store.as_ref(), cluster).await?,
        };
        if reset > 0 {
            tracing::info!(reset, "cleared streamerConnected left by an earlier run");
        }
        // Polling carries binary base64-encoded (4/3 larger) and may batch packets: room for
        // one chunk at the limit and the small messages around it.
        let max_payload = (config.max_chunk_bytes as u64) * 2 + (64 << 10);
        // A binary event is two engine packets; the queue holds the configured chunks and
        // the control messages around them.
        let buffer = config.listener_queue_chunks * 2 + 16;
        let overflow = Arc::new(Overflow::default());
        let (service, io) = SocketIo::builder()
            .max_payload(max_payload)
            .max_buffer_size(buffer)
            .ws_read_buffer_size(WS_READ_BUFFER)
            .with_adapter::<FanOut>(overflow.clone())
            .build_svc();
        let listener = TcpListener::bind(config.listen).await?;
        let (cluster, feeds) = cluster.map(|(c, f)| (Arc::new(c), f)).unzip();
        let shared = Shared::new(config, verifier.clone(), store.clone(), cluster.clone());
        shared.attach(&io, &overflow);
        let tasks = Tasks(match (cluster, feeds) {
            (Some(cluster), Some(feeds)) => spawn_cluster(&cluster, feeds, &shared),
            _ => Vec::new(),
        });
        // Socket.IO at its default path, whatever routes are merged beside.
        let socketio = Router::new()
            .route_service("/socket.io/", service.clone())
            .route_service("/socket.io", service)
            .layer(axum::middleware::map_request(detach_head));
        let router = api::routes(verifier, store).merge(socketio);
        Ok(Self {
            listener,
            router,
            tasks,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, with `extra` routes (health, metrics …) beside.
    pub async fn run(
        self,
        extra: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let router = self.router.merge(extra);
        let _tasks = self.tasks;
        axum::serve(no_delay(self.listener), router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}

/// socketioxide keeps each socket's request head for the socket's lifetime, and hyper's
/// header values and URI are slices of the connection's read buffer (8 to 16 KiB), which they
/// would keep alive all that time: half an idle listener's memory. Owned copies of the few
/// bytes let it go.
async fn detach_head(request: axum::extract::Request) -> axum::extract::Request {
    use axum::http::{HeaderName, HeaderValue, Uri};
    let (mut head, body) = request.into_parts();
    head.headers = head
        .headers
        .iter()
        .filter_map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
            let value = HeaderValue::from_bytes(value.as_bytes()).ok()?;
            Some((name, value))
        })
        .collect();
    let owned = |uri: &Uri| Uri::try_from(uri.to_string()).ok();
    if let Some(uri) = owned(&head.uri) {
        head.uri = uri;
    }
    // axum's copy of the URI as it arrived.
    if let Some(original) = head.extensions.get_mut::<axum::extract::OriginalUri>()
        && let Some(uri) = owned(&original.0)
    {
        original.0 = uri;
    }
    axum::extract::Request::from_parts(head, body)
}

/// The cluster's publisher, subscriber and lease watch.
fn spawn_cluster(
    cluster: &Arc<Cluster>,
    feeds: Feeds,
    shared: &Arc<Shared>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (commands, channel) = cluster.publisher();
    let weak = Arc::downgrade(shared);
    let apply = move |message| {
        if let Some(shared) = weak.upgrade() {
            shared.apply(message);
        }
    };
    vec![
        tokio::spawn(Cluster::publish(commands, channel.clone(), feeds.outbox)),
        tokio::spawn(Cluster::subscribe(
            cluster.node(),
            channel,
            feeds.subscription,
            feeds.client,
            apply,
        )),
        tokio::spawn(Shared::watch_leases(Arc::downgrade(shared))),
    ]
}

/// In a cluster, only the flags no node's lease stands behind are stale: the others are
/// other nodes' live streamers.
async fn clear_stale_flags(store: &dyn LivestreamStore, cluster: &Cluster) -> Result<u64, Error> {
    let flagged: Vec<String> = store
        .list(STALE_FLAG_SCAN)
        .await?
        .into_iter()
        .filter(|l| l.streamer_connected)
        .map(|l| l.id)
        .collect();
    let holders = cluster.holders(&flagged).await?;
    let mut cleared = 0;
    for (id, holder) in flagged.iter().zip(holders) {
        if holder.is_none() {
            store.release_streamer(id).await?;
            cleared += 1;
        }
    }
    Ok(cleared)
}

/// How many livestreams (the newest) are checked for stale flags when a node joins a cluster.
const STALE_FLAG_SCAN: usize = 10_000;

/// What a WebSocket reads at a time. Listeners send next to nothing (pongs); the few
/// streamers' uploads take more, smaller reads (a 1 MiB chunk, 1,024 reads: well under a
/// millisecond). 1 KiB instead of engine.io's 4 KiB saves 3 KiB per idle listener.
const WS_READ_BUFFER: usize = 1 << 10;

/// Small messages go out at once: TCP_NODELAY on every accepted connection (Nagle's delay,
/// with the peer's delayed acknowledgement, held them back tens of milliseconds).
fn no_delay(listener: TcpListener) -> impl axum::serve::Listener<Addr = SocketAddr> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    })
}
