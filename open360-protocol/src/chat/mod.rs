//! The chat service (the original's port 4002): Socket.IO rooms per channel.
//!
//! - A client connects with the query `channel` (default `universal`) and `user` (empty:
//!   anonymous), as the original's pages do. With a token secret configured, a name must come
//!   with a chat token the web service signed for it (`auth: {token}`); a claimed name without
//!   one is refused (`connect_error`). A token alone names its user.
//! - `chat-message {message}` in; `chat-message {user, colour, message}` out to the room, the
//!   text HTML-escaped. `colour` is a light `#rrggbb` chosen at connection and kept for it.
//! - Anonymous viewers read but cannot post; an over-long message, one over the rate, or an
//!   anonymous one gets `chat-error {error}` and goes nowhere.
//! - Each room's viewer count (every connection, anonymous ones too) and named members are
//!   kept exactly: a connection counts once from its join to its disconnection, never
//!   negative. Each change is told to `web-api` as `setViewerCount {username: <room>, count,
//!   seq}`.
//! - Questions: `status` (automatic), `members {channel}` → `{count, members}`.
//! - With `redis_url`, chat nodes sharing a Redis are one room space: socketioxide's Redis
//!   adapter carries each message to the room's readers on every node, and the counts are the
//!   deployment's (see `viewers`). Posted messages and refusals go out from one task, in order.

mod viewers;

use crate::{ChatConfig, Error, client::ServiceClient, transport::Transport};
use serde_json::{Value, json};
use socketioxide::{
    SocketIo,
    adapter::Adapter,
    extract::{Data, SocketRef, TryData},
    handler::{ConnectHandler as _, FromMessage, FromMessageParts as _},
    socket::{Sid, Socket},
};
use socketioxide_redis::{RedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::Instant,
};
use tokio::{net::TcpListener, sync::mpsc};
use viewers::{Cluster, Count, Viewers};

/// Chat messages that may wait to be written to one connection; a reader further behind
/// loses messages (counted in `open360_chat_dropped_total`).
const READER_QUEUE: usize = 4096;

/// Posted messages waiting to go out to their rooms (with Redis, each is published first);
/// beyond this the poster is told the chat is busy and the message goes nowhere.
const OUTBOX: usize = 4096;

/// What a WebSocket reads at a time: chat messages are short. 1 KiB instead of engine.io's
/// 4 KiB saves 3 KiB per connection.
const WS_READ_BUFFER: usize = 1 << 10;

/// The label the chat joins the hub under.
pub const CHAT_LABEL: &str = "chat-api";

/// A bound chat service, ready to [`run`](Chat::run).
pub struct Chat {
    listener: TcpListener,
    router: axum::Router,
    shared: Arc<Shared>,
}

struct Shared {
    config: ChatConfig,
    viewers: Arc<Viewers>,
    hub: OnceLock<ServiceClient>,
    /// Posted messages and the refusals of the others, in the order they were posted.
    outbox: mpsc::Sender<Out>,
}

/// Who a connection is, kept in its extensions.
#[derive(Debug, Clone)]
struct Viewer {
    channel: String,
    user: Option<String>,
    colour: String,
    budget: Arc<Mutex<(f64, Instant)>>,
}

/// What the chat sends out for a posted message, in the order of posting.
#[derive(Debug)]
enum Out {
    /// A message to a room.
    Room { room: String, message: Value },
    /// `chat-error` to the connection that posted.
    Refused { to: Sid, error: String },
}

#[derive(Debug, serde::Deserialize, Default)]
struct Auth {
    token: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct Posted {
    message: String,
}

impl Chat {
    /// Validates `config` and binds `config.listen`; with `config.redis_url`, joins the other
    /// chat nodes over Redis first. With `hub`, the chat joins it as [`CHAT_LABEL`]: it tells
    /// `web-api` its viewer counts and answers questions.
    pub async fn bind(config: ChatConfig, hub: Option<Arc<dyn Transport>>) -> Result<Self, Error> {
        config.validate()?;
        if config.token_secret.is_none() {
            tracing::warn!("no chat token secret: chat names are taken as claimed");
        }
        let redis = match &config.redis_url {
            Some(url) => Some(redis::Client::open(resp3(url))?),
            None => None,
        };
        let (counts, changes) = mpsc::unbounded_channel();
        let cluster = match &redis {
            Some(client) => {
                let (cluster, reaped) = Cluster::join(
                    client.clone(),
                    config.redis_prefix.clone(),
                    config.node_lease,
                )
                .await?;
                for count in reaped {
                    let _ = counts.send(count);
                }
                Some(cluster)
            }
            None => None,
        };
        let viewers = Viewers::start(config.max_rooms, cluster, move |count| {
            let _ = counts.send(count);
        });
        let (outbox, posted) = mpsc::channel(OUTBOX);
        let shared = Arc::new(Shared {
            config: config.clone(),
            viewers,
            hub: OnceLock::new(),
            outbox,
        });
        if let Some(transport) = hub {
            let weak = Arc::downgrade(&shared);
            let client = ServiceClient::builder(CHAT_LABEL)
                .on("members", move |question| {
                    let shared = weak.upgrade();
                    async move {
                        let shared = shared.ok_or("the chat is stopping")?;
                        let channel = question.package.data["channel"]
                            .as_str()
                            .unwrap_or(&shared.config.default_channel)
                            .to_owned();
                        let (count, members) = shared.viewers.members(&channel).await?;
                        Ok(json!({ "count": count, "members": members }))
                    }
                })
                .start(transport);
            let _ = shared.hub.set(client.clone());
            tokio::spawn(tell_counts(client, changes));
        }
        // Room for a burst in a busy room: every message is a packet in each reader's queue.
        let builder = SocketIo::builder()
            .max_buffer_size(READER_QUEUE)
            .ws_read_buffer_size(WS_READ_BUFFER);
        let router = match redis {
            None => {
                let (service, io) = builder.build_svc();
                io.ns("/", joined.with(admission(&shared)));
                tokio::spawn(send_in_order(io, posted));
                routes(service)
            }
            Some(client) => {
                let adapter = RedisAdapterConfig::new()
                    .with_prefix(format!("{}socket.io", config.redis_prefix));
                let adapter = RedisAdapterCtr::new_with_redis_config(&client, adapter).await?;
                let (service, io) = builder.with_adapter::<RedisAdapter<_>>(adapter).build_svc();
                io.ns("/", joined.with(admission(&shared)))
                    .await
                    .map_err(|error| std::io::Error::other(error.to_string()))?;
                tokio::spawn(send_in_order(io, posted));
                routes(service)
            }
        };
        let listener = TcpListener::bind(config.listen).await?;
        Ok(Self {
            listener,
            router,
            shared,
        })
    }

    /// Whether the chat's link to the hub is open, as it changes (`None` without a hub).
    pub fn link_state(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        self.shared.hub.get().map(ServiceClient::link_state)
    }

    /// Waits until the chat's link to the hub is open (at once without a hub).
    pub async fn linked(&self) {
        if let Some(client) = self.shared.hub.get() {
            client.connected().await;
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, with `extra` routes (health, metrics …) beside.
    /// With Redis, the node's viewers then leave the deployment's counts at once.
    pub async fn run(
        self,
        extra: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let served = axum::serve(
            crate::net::no_delay(self.listener),
            self.router.merge(extra),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        for count in self.shared.viewers.leave_cluster().await {
            if let Some(hub) = self.shared.hub.get() {
                let _ = hub.tell("web-api", "setViewerCount", told(&count)).await;
            }
        }
        Ok(served?)
    }
}

/// The URL with RESP3 asked for, which the Redis adapter's subscriptions need.
fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

fn admission<A: Adapter>(
    shared: &Arc<Shared>,
) -> impl Fn(SocketRef<A>, TryData<Auth>) -> std::future::Ready<Result<(), String>>
+ Clone
+ Send
+ Sync
+ 'static {
    let shared = shared.clone();
    move |s: SocketRef<A>, TryData(auth): TryData<Auth>| {
        std::future::ready(shared.admit(&s, auth.unwrap_or_default()))
    }
}

/// Socket.IO's routes, with each request's head detached.
fn routes<S>(service: S) -> axum::Router
where
    S: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse + 'static,
    S::Future: Send + 'static,
{
    crate::net::detached(
        axum::Router::new()
            .route_service("/socket.io/", service.clone())
            .route_service("/socket.io", service),
    )
}

/// Sends each posted message to its room, and each refusal to its poster, one after the
/// other: a connection hears its answers in the order it posted, and with Redis a message is
/// published before the next, so every node delivers a room's messages in the posted order.
async fn send_in_order<A: Adapter>(io: SocketIo<A>, mut posted: mpsc::Receiver<Out>) {
    while let Some(out) = posted.recv().await {
        match out {
            Out::Room { room, message } => {
                if let Err(error) = io.to(room.clone()).emit("chat-message", &message).await {
                    metrics::counter!("open360_chat_dropped_total").increment(1);
                    tracing::warn!(%error, room, "a chat message did not reach every reader");
                }
            }
            Out::Refused { to, error } => {
                if let Some(socket) = io.get_socket(to) {
                    let _ = socket.emit("chat-error", &json!({ "error": error }));
                }
            }
        }
    }
}

impl Shared {
    fn admit<A: Adapter>(self: &Arc<Self>, s: &SocketRef<A>, auth: Auth) -> Result<(), String> {
        let query = |key: &str| crate::net::query_param(s, key);
        let channel = query("channel")
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| self.config.default_channel.clone());
        let claimed = query("user").filter(|u| !u.is_empty());
        let user = match (&self.config.token_secret, auth.token) {
            (None, _) => claimed,
            (Some(secret), Some(token)) => {
                let proven = crate::chat_token::verify_chat_token(secret, &token)
                    .map_err(|_| "invalid chat token".to_owned())?;
                if claimed.as_ref().is_some_and(|c| *c != proven) {
                    return Err("the chat token is for another user".to_owned());
                }
                Some(proven)
            }
            (Some(_), None) if claimed.is_some() => {
                return Err("a name needs a chat token from the web service".to_owned());
            }
            (Some(_), None) => None,
        };
        self.viewers.join(&channel, user.as_deref())?;
        let burst = f64::from(self.config.message_burst);
        let viewer = Viewer {
            channel: channel.clone(),
            user,
            colour: light_colour(),
            budget: Arc::new(Mutex::new((burst, Instant::now()))),
        };
        s.join(channel);
        s.extensions.insert(viewer);
        s.extensions.insert(self.clone());
        let shared = self.clone();
        s.on_disconnect(async move |s: SocketRef<A>| {
            if let Some(viewer) = s.extensions.get::<Viewer>() {
                shared
                    .viewers
                    .leave(&viewer.channel, viewer.user.as_deref());
            }
        });
        Ok(())
    }

    fn post(&self, viewer: &Viewer, text: &str) -> Result<(), String> {
        let Some(user) = &viewer.user else {
            return Err("anonymous viewers cannot post; log in to chat".to_owned());
        };
        let limit = self.config.max_message_chars;
        if text.chars().count() > limit {
            return Err(format!("a message is at most {limit} characters"));
        }
        if text.trim().is_empty() {
            return Err("an empty message".to_owned());
        }
        if !self.take(viewer) {
            return Err(format!(
                "too fast: at most {} messages per second",
                self.config.messages_per_second
            ));
        }
        let out = json!({ "user": user, "colour": viewer.colour, "message": escape(text) });
        let out = Out::Room {
            room: viewer.channel.clone(),
            message: out,
        };
        self.outbox.try_send(out).map_err(|_| {
            metrics::counter!("open360_chat_busy_total").increment(1);
            "the chat is busy; try again".to_owned()
        })?;
        metrics::counter!("open360_chat_messages_total").increment(1);
        Ok(())
    }

    fn take(&self, viewer: &Viewer) -> bool {
        let mut bucket = viewer.budget.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = &mut *bucket;
        let now = Instant::now();
        let rate = f64::from(self.config.messages_per_second);
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate)
            .min(f64::from(self.config.message_burst));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// `setViewerCount`'s data: the room (named after its channel's owner), its count and `seq`,
/// which grows with each change so the web service can ignore a count that arrives late.
fn told(count: &Count) -> Value {
    json!({ "username": count.room, "count": count.count, "seq": count.seq })
}

/// Tells `web-api` each viewer count, in the order they changed, until the chat stops.
async fn tell_counts(hub: ServiceClient, mut changes: mpsc::UnboundedReceiver<Count>) {
    while let Some(count) = changes.recv().await {
        if let Err(error) = hub.tell("web-api", "setViewerCount", told(&count)).await {
            tracing::debug!(%error, "viewer count not told");
        }
    }
}

/// After admission: the connection may post.
async fn joined<A: Adapter>(s: SocketRef<A>) {
    s.on("chat-message", async |_: Posting| {});
}

/// A `chat-message`, handled where socketioxide decodes it, so one connection's messages go
/// out in the order they came (its handlers are spawned tasks, which may run out of order).
struct Posting;

impl<A: Adapter> FromMessage<A> for Posting {
    type Error = std::convert::Infallible;

    fn from_message(
        s: Arc<Socket<A>>,
        mut v: socketioxide_core::Value,
        ack: Option<i64>,
    ) -> Result<Self, Self::Error> {
        let (Some(viewer), Some(shared)) = (
            s.extensions.get::<Viewer>(),
            s.extensions.get::<Arc<Shared>>(),
        ) else {
            return Ok(Self);
        };
        let posted = Data::<Posted>::from_message_parts(&s, &mut v, &ack)
            .map_err(|_| "a chat message is {message: text}".to_owned());
        if let Err(error) = posted.and_then(|Data(p)| shared.post(&viewer, &p.message)) {
            let refused = Out::Refused { to: s.id, error };
            if let Err(mpsc::error::TrySendError::Full(Out::Refused { error, .. })) =
                shared.outbox.try_send(refused)
            {
                // Overloaded: told at once, out of order.
                let _ = SocketRef::from(s).emit("chat-error", &json!({ "error": error }));
            }
        }
        Ok(Self)
    }
}

/// A light colour: each channel between 0x80 and 0xff, so dark text stays readable.
fn light_colour() -> String {
    let [r, g, b]: [u8; 3] = rand::random();
    format!("#{:02x}{:02x}{:02x}", r | 0x80, g | 0x80, b | 0x80)
}

/// HTML-escapes chat text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod text {
    use super::*;

    #[test]
    fn text_is_escaped_and_colours_are_light() {
        assert_eq!(
            escape(r#"<b>"hi" & 'bye'</b>"#),
            "&lt;b&gt;&quot;hi&quot; &amp; &#39;bye&#39;&lt;/b&gt;"
        );
        for _ in 0..100 {
            let colour = light_colour();
            assert_eq!(colour.len(), 7);
            let channels = u32::from_str_radix(&colour[1..], 16).expect("hex");
            assert_eq!(channels & 0x80_80_80, 0x80_80_80, "{colour}");
        }
    }
}
