//! The internal API hub: services connect over Socket.IO under their label; every
//! `api-message` is relayed, as the event named by its target, to that service's sockets
//! only, and logged.
//!
//! - A service names itself with `auth: {service, token}`, or with the original's query
//!   `?name=open360:<label>` (a `-server` suffix is dropped). With a hub token configured, a
//!   wrong or missing token is refused (`connect_error`).
//! - A question to a service with no connected socket is answered at once, on the sender's
//!   `ack` event, with an error reply (`package.error`), instead of silence; so is a question
//!   that no socket of its service could take because each is too far behind (its queue of
//!   `max_queued_per_socket` full).
//! - The hub answers `status` itself for the target `api`.
//! - Messages are relayed in the order each socket sent them: they are handled where
//!   socketioxide decodes them (its handlers are spawned tasks, which may run out of order).
//! - A message that is not an `api-message` gets `api-error` (`{error}`) back; nothing else.

use crate::{
    Error, HubConfig,
    log::{LoggedMessage, MessageLog},
    message::{ApiMessage, MessageType},
    routing::{Route, reply_event, route},
};
use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use socketioxide::{
    BroadcastError, SocketIo,
    adapter::LocalAdapter,
    extract::{Data, SocketRef, TryData},
    handler::{ConnectHandler as _, FromMessage, FromMessageParts as _},
    socket::Socket,
};
use std::{future::Future, net::SocketAddr, sync::Arc, time::SystemTime};
use tokio::{net::TcpListener, sync::mpsc};

/// Log entries waiting for the store; one more is counted and dropped, never waited for.
const LOG_QUEUE: usize = 65_536;

/// A bound hub, ready to [`run`](Hub::run).
pub struct Hub {
    listener: TcpListener,
    router: Router,
    writer: tokio::task::JoinHandle<()>,
}

struct Shared {
    config: HubConfig,
    io: SocketIo,
    log: mpsc::Sender<Entry>,
}

/// What the log writer is handed: a message, or a request to say when everything before it
/// is written (so `GET /messages` sees every message relayed before it was asked).
enum Entry {
    Message(LoggedMessage),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The label a socket joined under, kept in its extensions.
#[derive(Debug, Clone)]
struct Service(String);

#[derive(Debug, serde::Deserialize, Default)]
struct Auth {
    service: Option<String>,
    token: Option<String>,
}

impl Hub {
    /// Validates `config` and binds `config.listen` (port 0 picks a free one).
    pub async fn bind(config: HubConfig, log: Arc<dyn MessageLog>) -> Result<Self, Error> {
        config.validate()?;
        let (service, io) = SocketIo::builder()
            .max_payload(config.max_message_bytes as u64)
            .max_buffer_size(config.max_queued_per_socket)
            .build_svc();
        let (queue, pending) = mpsc::channel(LOG_QUEUE);
        let writer = tokio::spawn(write_log(log.clone(), pending, config.log_retention));
        let shared = Arc::new(Shared {
            config: config.clone(),
            io: io.clone(),
            log: queue,
        });
        let admit = {
            let shared = shared.clone();
            move |s: SocketRef, TryData(auth): TryData<Auth>| {
                let shared = shared.clone();
                async move { shared.admit(&s, auth.unwrap_or_default()) }
            }
        };
        io.ns("/", joined.with(admit));
        let listener = TcpListener::bind(config.listen).await?;
        let reader = Reader {
            log,
            queue: shared.log.clone(),
            token: config.token.clone(),
        };
        let socketio = Router::new()
            .route_service("/socket.io/", service.clone())
            .route_service("/socket.io", service);
        let router = Router::new()
            .route("/messages", axum::routing::get(messages))
            .with_state(Arc::new(reader))
            .merge(crate::net::detached(socketio));
        Ok(Self {
            listener,
            router,
            writer,
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
        let served = axum::serve(
            crate::net::no_delay(self.listener),
            self.router.merge(extra),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        self.writer.abort();
        Ok(served?)
    }
}

impl Shared {
    /// Names the socket and checks its token; a refusal becomes the client's `connect_error`.
    fn admit(self: &Arc<Self>, s: &SocketRef, auth: Auth) -> Result<(), String> {
        let query = |key: &str| crate::net::query_param(s, key);
        if let Some(expected) = &self.config.token {
            let given = auth.token.or_else(|| query("token")).unwrap_or_default();
            if !same(given.as_bytes(), expected.as_bytes()) {
                metrics::counter!("open360_hub_refused_total").increment(1);
                return Err("unauthorized: a wrong or missing hub token".to_owned());
            }
        }
        let label = auth
            .service
            .or_else(|| query("name"))
            .map(|name| label_of(&name))
            .filter(|label| !label.is_empty())
            .ok_or("a service must give its name (auth.service or ?name=)")?;
        tracing::info!(sid = %s.id, service = label, "service joined");
        s.join(label.clone());
        s.extensions.insert(Service(label));
        s.extensions.insert(self.clone());
        Ok(())
    }

    /// Relays one message from `from` (see the module docs).
    fn relay(&self, s: &SocketRef, from: &str, raw: serde_json::Value) {
        let message: ApiMessage = match serde_json::from_value(raw.clone()) {
            Ok(message) => message,
            Err(error) => {
                metrics::counter!("open360_hub_malformed_total").increment(1);
                let _ = s.emit(
                    "api-error",
                    &serde_json::json!({ "error": format!("not an api-message: {error}") }),
                );
                return;
            }
        };
        self.record(from, &message);
        let target = || self.io.within(message.target.clone());
        let sockets = target().sockets().len();
        match route(&message, sockets > 0) {
            Route::Drop => metrics::counter!("open360_hub_undeliverable_total").increment(1),
            Route::Answer(reply) => {
                let _ = s.emit(reply_event(&message, from), &reply);
            }
            Route::Deliver => {
                metrics::counter!("open360_hub_relayed_total").increment(1);
                use futures::FutureExt as _;
                // The local adapter broadcasts at once; a socket with a full queue misses it.
                if let Some(Err(error)) = target().emit(message.target.clone(), &raw).now_or_never()
                {
                    metrics::counter!("open360_hub_dropped_total").increment(1);
                    tracing::warn!(%error, target = message.target, "a socket of the target is too far behind; message lost to it");
                    let missed = match &error {
                        BroadcastError::Socket(failed) => failed.len(),
                        _ => sockets,
                    };
                    // No socket took the question: its asker is told now, not at its timeout.
                    if message.kind == MessageType::Question && missed >= sockets {
                        let busy = format!(
                            "service {} is too far behind; the question was not delivered",
                            message.target
                        );
                        let _ = s.emit(reply_event(&message, from), &message.error_reply(&busy));
                    }
                }
            }
        }
    }

    fn record(&self, from: &str, message: &ApiMessage) {
        let at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let entry = LoggedMessage {
            at_ms,
            from: from.to_owned(),
            target: message.target.clone(),
            kind: message.kind.as_str().to_owned(),
            prompt: message.package.prompt.clone(),
            message: message.package.message.clone(),
        };
        if self.log.try_send(Entry::Message(entry)).is_err() {
            metrics::counter!("open360_hub_log_dropped_total").increment(1);
        }
    }
}

/// After admission: the socket relays its `api-message`s.
async fn joined(s: SocketRef) {
    s.on("api-message", async |_: Relayed| {});
}

/// An `api-message`, relayed while socketioxide decodes it, in arrival order.
struct Relayed;

impl FromMessage<LocalAdapter> for Relayed {
    type Error = std::convert::Infallible;

    fn from_message(
        s: Arc<Socket>,
        mut v: socketioxide_core::Value,
        ack: Option<i64>,
    ) -> Result<Self, Self::Error> {
        let socket = SocketRef::from(s.clone());
        let (Some(shared), Some(Service(from))) = (
            s.extensions.get::<Arc<Shared>>(),
            s.extensions.get::<Service>(),
        ) else {
            return Ok(Self);
        };
        match Data::<serde_json::Value>::from_message_parts(&s, &mut v, &ack) {
            Ok(Data(raw)) => shared.relay(&socket, &from, raw),
            Err(error) => {
                let _ = socket.emit(
                    "api-error",
                    &serde_json::json!({ "error": format!("not an api-message: {error}") }),
                );
            }
        }
        Ok(Self)
    }
}

/// Writes the log in batches until the hub stops.
async fn write_log(log: Arc<dyn MessageLog>, mut pending: mpsc::Receiver<Entry>, keep: usize) {
    let mut entries = Vec::with_capacity(512);
    let mut batch = Vec::with_capacity(512);
    let mut flushed = Vec::new();
    while pending.recv_many(&mut entries, 512).await > 0 {
        for entry in entries.drain(..) {
            match entry {
                Entry::Message(message) => batch.push(message),
                Entry::Flush(done) => flushed.push(done),
            }
        }
        if !batch.is_empty()
            && let Err(error) = log.append(&batch, keep).await
        {
            tracing::error!(%error, lost = batch.len(), "cannot write the message log");
            metrics::counter!("open360_hub_log_dropped_total").increment(batch.len() as u64);
        }
        batch.clear();
        for done in flushed.drain(..) {
            let _ = done.send(());
        }
    }
}

/// What `GET /messages` reads with.
struct Reader {
    log: Arc<dyn MessageLog>,
    queue: mpsc::Sender<Entry>,
    token: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct MessagesQuery {
    target: Option<String>,
    limit: Option<usize>,
}

/// The most messages `GET /messages` returns.
const MAX_LIMIT: usize = 1_000;

/// `GET /messages?target=&limit=`: the newest logged messages (default 100, at most 1,000);
/// with a hub token, only for `Authorization: Bearer <token>`.
async fn messages(
    State(reader): State<Arc<Reader>>,
    headers: HeaderMap,
    Query(query): Query<MessagesQuery>,
) -> Response {
    if let Some(expected) = &reader.token {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same(given.as_bytes(), expected.as_bytes()) {
            return (StatusCode::UNAUTHORIZED, "a hub token is required\n").into_response();
        }
    }
    let limit = query.limit.unwrap_or(100).min(MAX_LIMIT);
    // Everything relayed before this request is written first.
    let (done, written) = tokio::sync::oneshot::channel();
    if reader.queue.send(Entry::Flush(done)).await.is_ok() {
        let _ = written.await;
    }
    match reader.log.newest(query.target.as_deref(), limit).await {
        Ok(messages) => Json(messages).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot read the message log");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the message log is unavailable\n",
            )
                .into_response()
        }
    }
}

/// The service label in a name: what follows the last colon, without a `-server` suffix
/// (`open360:chat-api-server` → `chat-api`).
pub fn label_of(name: &str) -> String {
    let name = name.rsplit(':').next().unwrap_or(name).trim();
    name.strip_suffix("-server").unwrap_or(name).to_owned()
}

fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod names {
    use super::*;

    #[test]
    fn a_label_is_the_name_after_its_colon_without_server() {
        assert_eq!(label_of("open360:chat-api-server"), "chat-api");
        assert_eq!(label_of("open360:web-api"), "web-api");
        assert_eq!(label_of("ingest-api"), "ingest-api");
        assert_eq!(label_of("a:b:c"), "c");
        assert_eq!(label_of(""), "");
    }
}
