//! The Camus server: the pages, the room cookie and the signaling WebSocket around one
//! [`RoomRegistry`], with rooms kept in a [`Store`].
//!
//! The registry is behind one lock, with each connected client's queue of outgoing frames:
//! an event (a message, a socket opening or closing, a timer tick) takes the lock, runs the
//! registry, and picks the queues its outputs go to; the frames are written to those queues
//! after the lock is released. A client's queue holds
//! [`client_queue`](crate::CamusConfig::client_queue) frames; a client further behind is
//! disconnected (close code 1008), and nobody else loses anything.

mod cluster;
mod cookie;
mod pages;
mod socket;

use crate::message::{Envelope, MessageError};
use crate::registry::{ClientId, CloseReason, ConnectError, ConnectionId, Outgoing, RoomRegistry};
use crate::store::Store;
use crate::{CamusConfig, Error};
use cookie::CookieKey;
use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_tungstenite::tungstenite::{Utf8Bytes, protocol::frame::coding::CloseCode};

/// How often the registry's timers run.
const TICK: Duration = Duration::from_secs(1);

/// What a client's socket task writes.
#[derive(Debug)]
pub(crate) enum Frame {
    Text(Utf8Bytes),
    Close(CloseCode, &'static str),
}

/// A bound Camus server, ready to [`run`](CamusServer::run).
pub struct CamusServer {
    listener: TcpListener,
    app: Arc<App>,
    cluster: Option<cluster::Parts>,
}

pub(crate) struct App {
    config: CamusConfig,
    cookies: CookieKey,
    store: Arc<dyn Store>,
    state: Mutex<State>,
    /// With Redis: this server's place among the others.
    cluster: Option<Arc<cluster::Link>>,
}

struct State {
    registry: RoomRegistry,
    sockets: HashMap<ClientId, Socket>,
    cluster: Option<Arc<cluster::Link>>,
    /// When each other server of the cluster was last heard.
    servers: cluster::Heard,
}

struct Socket {
    connection: ConnectionId,
    frames: mpsc::Sender<Frame>,
}

impl CamusServer {
    /// Validates `config`, loads the rooms of `store` and binds `config.listen`. The cookie
    /// secret is `config.cookie_secret`, or one kept in `<data_dir>/cookie-secret` (made on
    /// first start), so cookies survive a restart.
    pub async fn bind(config: CamusConfig, store: Arc<dyn Store>) -> Result<Self, Error> {
        config.validate()?;
        let secret = match &config.cookie_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => stored_secret(&config.data_dir).await?,
        };
        let mut registry = RoomRegistry::new(&config);
        let now = Instant::now();
        let rooms = store.rooms(config.max_rooms).await?;
        let restored = rooms.len();
        for room in rooms {
            registry.restore_room(&room.slug, pages::spec_of(&room), now);
        }
        if restored > 0 {
            tracing::info!(restored, "rooms restored from the store");
        }
        let (link, parts) = match &config.redis_url {
            Some(url) => {
                let (link, parts) = cluster::connect(url, &config.redis_prefix).await?;
                registry.enable_cluster();
                tracing::info!(server = link.server, "joined the Camus cluster");
                (Some(Arc::new(link)), Some(parts))
            }
            None => (None, None),
        };
        let listener = TcpListener::bind(config.listen).await?;
        let app = Arc::new(App {
            cookies: CookieKey::new(&secret),
            store,
            state: Mutex::new(State {
                registry,
                sockets: HashMap::new(),
                cluster: link.clone(),
                servers: cluster::Heard::new(),
            }),
            cluster: link,
            config,
        });
        Ok(Self {
            listener,
            app,
            cluster: parts,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, with `extra` routes (health, metrics …) beside.
    pub async fn run(
        self,
        extra: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        tokio::spawn(tick(Arc::downgrade(&self.app)));
        if let Some(parts) = self.cluster {
            cluster::run(&self.app, parts);
        }
        let router = pages::routes(self.app.clone()).merge(extra);
        // Signaling messages are small and wait for each other: no Nagle delay.
        let listener = {
            use axum::serve::ListenerExt as _;
            self.listener.tap_io(|tcp| {
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
            })
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}

/// Runs the registry's timers every [`TICK`] until the server is gone.
async fn tick(app: std::sync::Weak<App>) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(app) = app.upgrade() else {
            return;
        };
        let (out, deleted) = app.locked(|state| {
            let out = state.registry.tick(Instant::now(), SystemTime::now());
            let deleted = state.registry.take_deleted_rooms();
            (state.route(out), deleted)
        });
        app.deliver(out);
        for slug in deleted {
            if let Err(error) = app.store.delete_room(&slug).await {
                tracing::warn!(%error, slug, "idle room not deleted from the store");
            }
        }
        let stats = app.locked(|state| state.registry.stats());
        metrics::gauge!("camus_rooms").set(stats.rooms as f64);
        metrics::gauge!("camus_clients", "state" => "connected").set(stats.connected as f64);
        metrics::gauge!("camus_clients", "state" => "dropped").set(stats.dropped as f64);
        metrics::gauge!("camus_clients", "state" => "admitted").set(stats.admitted as f64);
        metrics::gauge!("camus_clients", "state" => "remote").set(stats.remote as f64);
    }
}

/// The cookie secret kept under `dir`, made on first use.
async fn stored_secret(dir: &std::path::Path) -> Result<Vec<u8>, Error> {
    let path = dir.join("cookie-secret");
    match tokio::fs::read(&path).await {
        Ok(secret) if secret.len() >= 32 => return Ok(secret),
        Ok(_) => {
            tracing::warn!(path = %path.display(), "cookie secret too short; making a new one")
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error.into()),
    }
    tokio::fs::create_dir_all(dir).await?;
    let secret: [u8; 32] = rand::random();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&path).await?;
    tokio::io::AsyncWriteExt::write_all(&mut file, hex.as_bytes()).await?;
    Ok(hex.into_bytes())
}

/// Frames for client queues, picked under the lock and written after it.
type Deliveries = Vec<(mpsc::Sender<Frame>, Delivery)>;

enum Delivery {
    Envelope(Arc<Envelope>),
    Close(CloseCode, &'static str),
}

impl State {
    /// The queues `out` goes to. A client asked to close is forgotten here: nothing more is
    /// written to it.
    fn route(&mut self, out: Vec<Outgoing>) -> Deliveries {
        let mut deliveries = Vec::with_capacity(out.len());
        for action in out {
            match action {
                Outgoing::Send { to, envelope } => {
                    if let Some(socket) = self.sockets.get(&to) {
                        deliveries.push((socket.frames.clone(), Delivery::Envelope(envelope)));
                    }
                }
                Outgoing::Close { to, reason } => {
                    if let Some(socket) = self.sockets.remove(&to) {
                        let (code, text) = match reason {
                            CloseReason::Bye => (CloseCode::Normal, "bye"),
                            CloseReason::Reaped => (CloseCode::Normal, "silent too long"),
                            _ => (CloseCode::Policy, "not a client of this room"),
                        };
                        deliveries.push((socket.frames, Delivery::Close(code, text)));
                    }
                }
                cluster @ (Outgoing::Forward { .. } | Outgoing::Announce { .. }) => {
                    if let Some(link) = &self.cluster {
                        link.queue(cluster);
                    }
                }
            }
        }
        deliveries
    }
}

/// Writes each frame to its queue, a broadcast serialized once; returns the queues that were
/// full.
fn deliver(deliveries: Deliveries) -> Vec<mpsc::Sender<Frame>> {
    let mut full = Vec::new();
    let mut last: Option<(*const Envelope, Utf8Bytes)> = None;
    for (queue, delivery) in deliveries {
        let frame = match delivery {
            Delivery::Envelope(envelope) => {
                let text = match &last {
                    Some((pointer, text)) if std::ptr::eq(*pointer, Arc::as_ptr(&envelope)) => {
                        text.clone()
                    }
                    _ => {
                        let text = Utf8Bytes::from(envelope.to_text());
                        last = Some((Arc::as_ptr(&envelope), text.clone()));
                        text
                    }
                };
                Frame::Text(text)
            }
            Delivery::Close(code, reason) => Frame::Close(code, reason),
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = queue.try_send(frame) {
            metrics::counter!("camus_frames_dropped_total").increment(1);
            full.push(queue);
        }
    }
    full
}

impl App {
    fn locked<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether room `slug` exists, loading it from the store when this server does not
    /// hold it (created by another server of the cluster, or before a restart and not yet
    /// idle).
    async fn load_room(&self, slug: &str) -> bool {
        if self.locked(|state| state.registry.room(slug).is_some()) {
            return true;
        }
        match self.store.room(slug).await {
            Ok(Some(room)) => self.locked(|state| {
                state
                    .registry
                    .restore_room(slug, pages::spec_of(&room), Instant::now());
                state.registry.room(slug).is_some()
            }),
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, slug, "room not read from the store");
                false
            }
        }
    }

    /// The client's socket opened: seats it and keeps its queue (closing an older socket of
    /// the same client).
    fn connect(
        &self,
        slug: &str,
        id: &ClientId,
        frames: mpsc::Sender<Frame>,
    ) -> Result<ConnectionId, ConnectError> {
        let (connection, out) = self.locked(|state| {
            let connected = state.registry.connect(slug, id, Instant::now())?;
            let socket = Socket {
                connection: connected.connection,
                frames,
            };
            let mut out = Vec::new();
            if let Some(old) = state.sockets.insert(*id, socket) {
                out.push((
                    old.frames,
                    Delivery::Close(CloseCode::Normal, "replaced by a newer connection"),
                ));
            }
            out.extend(state.route(connected.outgoing));
            Ok((connected.connection, out))
        })?;
        self.deliver(out);
        metrics::counter!("camus_connections_total").increment(1);
        Ok(connection)
    }

    /// The socket `connection` of client `id` closed.
    fn disconnected(&self, id: &ClientId, connection: ConnectionId) {
        self.locked(|state| {
            if state
                .sockets
                .get(id)
                .is_some_and(|s| s.connection == connection)
            {
                state.sockets.remove(id);
            }
            state.registry.disconnect(id, connection);
        });
    }

    /// A text frame from client `id`, parsed.
    fn received(
        &self,
        id: &ClientId,
        parsed: Result<Envelope, MessageError>,
        now: Instant,
        wall: SystemTime,
    ) {
        let out = self.locked(|state| {
            let out = state.registry.receive_parsed(id, parsed, now, wall);
            state.route(out)
        });
        metrics::counter!("camus_messages_total").increment(1);
        self.deliver(out);
    }

    /// `envelope` to the client's own socket `connection`.
    fn send_to(&self, id: &ClientId, connection: ConnectionId, envelope: Envelope) {
        let out = self.locked(|state| {
            state
                .sockets
                .get(id)
                .filter(|s| s.connection == connection)
                .map(|s| vec![(s.frames.clone(), Delivery::Envelope(Arc::new(envelope)))])
                .unwrap_or_default()
        });
        self.deliver(out);
    }

    /// Delivers, then forgets the sockets whose queues were full: once every sender of a
    /// queue is gone its socket's task writes what is left and closes (1008, too slow).
    fn deliver(&self, out: Deliveries) {
        let full = deliver(out);
        if !full.is_empty() {
            self.locked(|state| {
                state
                    .sockets
                    .retain(|_, socket| !full.iter().any(|q| q.same_channel(&socket.frames)));
            });
        }
    }
}
