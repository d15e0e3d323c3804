//! The tokio driver: a TCP listener that serves only WebSocket, one task per connection, and
//! one [`PeerRegistry`] behind a lock.
//!
//! An event (a frame, a connection opening or closing, a timer) takes the lock, runs the
//! registry and picks the queues its outputs go to; the frames are written to those queues
//! after the lock is released, without waiting: a connection whose queue is full is dropped
//! (close code 1008), and nobody else waits for it.

use super::connection;
use super::registry::{ConnectionId, Handled, Output, Pairing, PeerRegistry, RequestError};
use crate::token::unix_seconds;
use crate::{ConfigError, Error, SignalingConfig};
use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};
use tokio::{net::TcpListener, sync::Notify, sync::mpsc, task::JoinSet};
use tokio_tungstenite::tungstenite::{Utf8Bytes, protocol::frame::coding::CloseCode};

/// Frames waiting for one connection; a connection further behind is disconnected.
pub const PEER_QUEUE: usize = 128;
/// Open connections at once, registered or not; more are closed as soon as accepted.
pub const MAX_CONNECTIONS: usize = 4096;
/// Time for a client to complete the WebSocket handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// At shutdown, how long connections get to receive their close frame.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The shortest secret [`SignalingServer::bind`] accepts.
pub const MIN_SECRET_BYTES: usize = 16;

/// What a connection's task writes.
#[derive(Debug)]
pub(crate) enum Frame {
    Text(Utf8Bytes),
    Close(CloseCode, &'static str),
}

/// A bound signaling server, ready to [`run`](SignalingServer::run).
#[derive(Debug)]
pub struct SignalingServer {
    listener: TcpListener,
    app: Arc<App>,
}

pub(crate) struct App {
    pub(crate) config: SignalingConfig,
    state: Mutex<State>,
    /// Wakes the timer task when the registry's next deadline moved earlier.
    timer: Notify,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct State {
    registry: PeerRegistry,
    queues: HashMap<ConnectionId, mpsc::Sender<Frame>>,
    /// The deadline the timer task sleeps until.
    armed: Option<Instant>,
    closing: bool,
}

/// Frames for connection queues, picked under the lock and written after it.
type Deliveries = Vec<(ConnectionId, mpsc::Sender<Frame>, Frame)>;

impl SignalingServer {
    /// Validates `config` and binds `config.listen`. REGISTER needs a token made with
    /// `secret` (see [`token`](crate::token)), at least [`MIN_SECRET_BYTES`] long.
    pub async fn bind(config: SignalingConfig, secret: impl AsRef<[u8]>) -> Result<Self, Error> {
        config.validate()?;
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::OutOfRange {
                setting: "token_secret",
                requirement: "at least 16 bytes",
                value: "[redacted]".into(),
            }
            .into());
        }
        let listener = TcpListener::bind(config.listen).await?;
        let app = Arc::new(App {
            state: Mutex::new(State {
                registry: PeerRegistry::new(secret, &config),
                queues: HashMap::new(),
                armed: None,
                closing: false,
            }),
            timer: Notify::new(),
            config,
        });
        Ok(Self { listener, app })
    }

    /// Which peers may open a session with which. Default [`Pairing::Any`].
    pub fn with_pairing(self, pairing: Pairing) -> Self {
        self.app.locked(|state| state.registry.set_pairing(pairing));
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; then closes every connection (1001, going away),
    /// waiting at most [`SHUTDOWN_GRACE`] for them.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        // Aborted however `run` ends, even when its future is dropped unfinished.
        let _timers = AbortOnDrop(tokio::spawn(run_timers(self.app.clone())));
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        while connections.try_join_next().is_some() {}
                        if connections.len() >= MAX_CONNECTIONS {
                            metrics::counter!("openspace_signaling_connections_refused_total")
                                .increment(1);
                            tracing::warn!(%peer, "signaling connection refused: too many open");
                            continue;
                        }
                        let _ = stream.set_nodelay(true);
                        connections.spawn(connection::serve(self.app.clone(), stream, peer));
                    }
                    Err(error) => {
                        // Out of file descriptors, say: keep serving the connections we
                        // have, and try again a little later rather than spin.
                        tracing::warn!(%error, "accepting a signaling connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(self.listener);
        self.app.close_all();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = connections.len(),
                "signaling connections still open after the grace period"
            );
        }
        connections.shutdown().await;
        Ok(())
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the registry's timers when they are due.
async fn run_timers(app: Arc<App>) {
    loop {
        let deadline = app.locked(|state| {
            state.armed = state.registry.poll_timeout();
            state.armed
        });
        match deadline {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = app.timer.notified() => continue,
                }
            }
            None => {
                app.timer.notified().await;
                continue;
            }
        }
        let out = app.locked(|state| {
            let expired = state.registry.handle_timeout(Instant::now());
            if expired.sessions > 0 {
                metrics::counter!("openspace_signaling_sessions_expired_total")
                    .increment(expired.sessions as u64);
            }
            if expired.connections > 0 {
                metrics::counter!("openspace_signaling_unregistered_closed_total")
                    .increment(expired.connections as u64);
            }
            state.route()
        });
        app.deliver(out);
    }
}

impl State {
    /// The queues the registry's outputs go to. A connection the registry closes is
    /// forgotten here: nothing more is written to it.
    fn route(&mut self) -> Deliveries {
        let mut deliveries = Vec::new();
        while let Some(output) = self.registry.poll_output() {
            match output {
                Output::Send { to, text } => {
                    if let Some(queue) = self.queues.get(&to) {
                        deliveries.push((to, queue.clone(), Frame::Text(text.into())));
                    }
                }
                Output::Close { to, reason } => {
                    if let Some(queue) = self.queues.remove(&to) {
                        let frame = Frame::Close(CloseCode::Normal, reason.as_str());
                        deliveries.push((to, queue, frame));
                    }
                }
            }
        }
        deliveries
    }

    /// Wakes the timer task if the registry's next deadline is earlier than what it waits for.
    fn rearm(&self, timer: &Notify) {
        let next = self.registry.poll_timeout();
        let earlier = match (next, self.armed) {
            (Some(next), Some(armed)) => next < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if earlier {
            timer.notify_one();
        }
    }

    fn gauges(&self) {
        let stats = self.registry.stats();
        metrics::gauge!("openspace_signaling_connections").set(stats.connections as f64);
        metrics::gauge!("openspace_signaling_peers").set(stats.peers as f64);
        metrics::gauge!("openspace_signaling_sessions").set(stats.sessions as f64);
        metrics::gauge!("openspace_signaling_pending_sessions").set(stats.pending as f64);
    }
}

impl App {
    fn locked<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A connection's WebSocket is open: its id, or `None` when the server is shutting down.
    pub(crate) fn open(&self, queue: mpsc::Sender<Frame>) -> Option<ConnectionId> {
        let opened = self.locked(|state| {
            if state.closing {
                return None;
            }
            let id = state.registry.handle_open(Instant::now());
            state.queues.insert(id, queue);
            state.rearm(&self.timer);
            state.gauges();
            Some(id)
        });
        if opened.is_some() {
            metrics::counter!("openspace_signaling_connections_total").increment(1);
        }
        opened
    }

    /// A text frame (`Ok`) or a binary one (`Err`) from `conn`.
    pub(crate) fn received(&self, conn: ConnectionId, frame: Result<&str, &[u8]>) {
        let (handled, out) = self.locked(|state| {
            let (now, unix_now) = (Instant::now(), unix_seconds(SystemTime::now()));
            let handled = match frame {
                Ok(text) => state.registry.handle_text(conn, text, now, unix_now),
                Err(bytes) => state.registry.handle_binary(conn, bytes, now, unix_now),
            };
            state.rearm(&self.timer);
            state.gauges();
            (handled, state.route())
        });
        match handled {
            Ok(handled) => {
                let outcome = match handled {
                    Handled::Registered { replaced: true } => "registered_again",
                    Handled::Registered { replaced: false } => "registered",
                    Handled::SessionOpened => "session_opened",
                    Handled::SessionPending => "session_pending",
                    Handled::Relayed => "relayed",
                    Handled::Ignored => "ignored",
                };
                metrics::counter!("openspace_signaling_messages_total", "outcome" => outcome)
                    .increment(1);
            }
            Err(error) => {
                if let RequestError::Refused(why) = &error {
                    tracing::debug!(%conn, %why, "REGISTER refused");
                }
                metrics::counter!("openspace_signaling_errors_total", "kind" => error.label())
                    .increment(1);
            }
        }
        self.deliver(out);
    }

    /// `conn`'s socket closed.
    pub(crate) fn closed(&self, conn: ConnectionId) {
        let out = self.locked(|state| {
            state.queues.remove(&conn);
            state.registry.handle_close(conn);
            state.gauges();
            state.route()
        });
        self.deliver(out);
    }

    /// Shutdown: every connection gets a close frame, and no new one is admitted.
    fn close_all(&self) {
        let out: Deliveries = self.locked(|state| {
            state.closing = true;
            state
                .queues
                .drain()
                .map(|(conn, queue)| {
                    let frame = Frame::Close(CloseCode::Away, "server shutting down");
                    (conn, queue, frame)
                })
                .collect()
        });
        self.deliver(out);
    }

    /// Writes each frame to its queue, never waiting. A connection whose queue is full is
    /// dropped at once: the registry forgets it (its partner gets a SESSION_END, written here
    /// too) and, once every sender of its queue is gone, its task writes what is left and
    /// closes the socket (1008, too slow).
    fn deliver(&self, mut out: Deliveries) {
        while !out.is_empty() {
            let mut full = Vec::new();
            for (conn, queue, frame) in out {
                if let Err(mpsc::error::TrySendError::Full(_)) = queue.try_send(frame) {
                    full.push(conn);
                }
            }
            if full.is_empty() {
                return;
            }
            full.sort_unstable();
            full.dedup();
            metrics::counter!("openspace_signaling_slow_peers_total").increment(full.len() as u64);
            out = self.locked(|state| {
                for conn in full {
                    if state.queues.remove(&conn).is_some() {
                        tracing::info!(%conn, "signaling peer too slow: disconnected");
                    }
                    state.registry.handle_close(conn);
                }
                state.gauges();
                state.route()
            });
        }
    }
}
