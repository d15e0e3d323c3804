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
//!   negative. Each change is told to `web-api` as `setViewerCount {username: <room>, count}`.
//! - Questions: `status` (automatic), `members {channel}` → `{count, members}`.

use crate::{ChatConfig, Error, client::ServiceClient, transport::Transport};
use serde_json::json;
use socketioxide::{
    SocketIo,
    adapter::LocalAdapter,
    extract::{Data, SocketRef, TryData},
    handler::{ConnectHandler as _, FromMessage, FromMessageParts as _},
    socket::Socket,
};
use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::Instant,
};
use tokio::net::TcpListener;

/// Chat messages that may wait to be written to one connection; a reader further behind
/// loses messages (counted in `open360_chat_dropped_total`).
const READER_QUEUE: usize = 4096;

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
    rooms: Mutex<HashMap<String, Room>>,
    hub: OnceLock<ServiceClient>,
    /// Viewer counts for `web-api`, told in the order they changed.
    counts: tokio::sync::mpsc::UnboundedSender<(String, u64)>,
}

/// One room's viewers: the connection count, and the named members (a name connected twice
/// counts twice, and is listed once).
#[derive(Debug, Default)]
struct Room {
    viewers: u64,
    members: BTreeMap<String, u64>,
}

/// Who a connection is, kept in its extensions.
#[derive(Debug, Clone)]
struct Viewer {
    channel: String,
    user: Option<String>,
    colour: String,
    budget: Arc<Mutex<(f64, Instant)>>,
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
    /// Validates `config` and binds `config.listen`. With `hub`, the chat joins it as
    /// [`CHAT_LABEL`]: it tells `web-api` its viewer counts and answers questions.
    pub async fn bind(config: ChatConfig, hub: Option<Arc<dyn Transport>>) -> Result<Self, Error> {
        config.validate()?;
        if config.token_secret.is_none() {
            tracing::warn!("no chat token secret: chat names are taken as claimed");
        }
        // Room for a burst in a busy room: every message is a packet in each reader's queue.
        let (service, io) = SocketIo::builder()
            .max_buffer_size(READER_QUEUE)
            .ws_read_buffer_size(WS_READ_BUFFER)
            .build_svc();
        let (counts, changes) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            config: config.clone(),
            rooms: Mutex::new(HashMap::new()),
            hub: OnceLock::new(),
            counts,
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
                        Ok(shared.members(&channel))
                    }
                })
                .start(transport);
            let _ = shared.hub.set(client.clone());
            tokio::spawn(tell_counts(client, changes));
        }
        let admit = {
            let shared = shared.clone();
            move |s: SocketRef, TryData(auth): TryData<Auth>| {
                let shared = shared.clone();
                async move { shared.admit(&s, auth.unwrap_or_default()) }
            }
        };
        io.ns("/", joined.with(admit));
        let listener = TcpListener::bind(config.listen).await?;
        let router = crate::net::detached(
            axum::Router::new()
                .route_service("/socket.io/", service.clone())
                .route_service("/socket.io", service),
        );
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
    pub async fn run(
        self,
        extra: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        axum::serve(
            crate::net::no_delay(self.listener),
            self.router.merge(extra),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        Ok(())
    }
}

impl Shared {
    fn rooms<T>(&self, f: impl FnOnce(&mut HashMap<String, Room>) -> T) -> T {
        f(&mut self.rooms.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn admit(self: &Arc<Self>, s: &SocketRef, auth: Auth) -> Result<(), String> {
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
        self.rooms(|rooms| {
            if !rooms.contains_key(&channel) && rooms.len() >= self.config.max_rooms {
                return Err(format!(
                    "too many rooms (at most {})",
                    self.config.max_rooms
                ));
            }
            let room = rooms.entry(channel.clone()).or_default();
            room.viewers += 1;
            if let Some(user) = &user {
                *room.members.entry(user.clone()).or_default() += 1;
            }
            // Under the lock, so counts are told in the order they changed.
            self.tell_count(&channel, room.viewers);
            Ok(())
        })?;
        let burst = f64::from(self.config.message_burst);
        let viewer = Viewer {
            channel: channel.clone(),
            user,
            colour: light_colour(),
            budget: Arc::new(Mutex::new((burst, Instant::now()))),
        };
        s.join(channel.clone());
        s.extensions.insert(viewer);
        s.extensions.insert(self.clone());
        let shared = self.clone();
        s.on_disconnect(async move |s: SocketRef| shared.left(&s));
        Ok(())
    }

    fn left(&self, s: &SocketRef) {
        let Some(viewer) = s.extensions.get::<Viewer>() else {
            return;
        };
        self.rooms(|rooms| {
            let Some(room) = rooms.get_mut(&viewer.channel) else {
                return;
            };
            room.viewers = room.viewers.saturating_sub(1);
            if let Some(user) = &viewer.user
                && let Some(n) = room.members.get_mut(user)
            {
                *n -= 1;
                if *n == 0 {
                    room.members.remove(user);
                }
            }
            let count = room.viewers;
            if count == 0 {
                rooms.remove(&viewer.channel);
            }
            self.tell_count(&viewer.channel, count);
        });
    }

    fn tell_count(&self, channel: &str, count: u64) {
        let _ = self.counts.send((channel.to_owned(), count));
    }

    fn post(&self, s: &SocketRef, viewer: &Viewer, text: &str) -> Result<(), String> {
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
        use futures::FutureExt as _;
        if let Some(Err(error)) = s
            .within(viewer.channel.clone())
            .emit("chat-message", &out)
            .now_or_never()
        {
            metrics::counter!("open360_chat_dropped_total").increment(1);
            tracing::warn!(%error, channel = viewer.channel, "a reader is too far behind; message lost to it");
        }
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

    /// `{count, members}` of a room.
    fn members(&self, channel: &str) -> serde_json::Value {
        self.rooms(|rooms| match rooms.get(channel) {
            Some(room) => json!({
                "count": room.viewers,
                "members": room.members.keys().collect::<Vec<_>>(),
            }),
            None => json!({ "count": 0, "members": [] }),
        })
    }
}

/// Tells `web-api` each viewer count, in the order they changed, until the chat stops.
async fn tell_counts(
    hub: ServiceClient,
    mut changes: tokio::sync::mpsc::UnboundedReceiver<(String, u64)>,
) {
    while let Some((channel, count)) = changes.recv().await {
        let data = json!({ "username": channel, "count": count });
        if let Err(error) = hub.tell("web-api", "setViewerCount", data).await {
            tracing::debug!(%error, "viewer count not told");
        }
    }
}

/// After admission: the connection may post.
async fn joined(s: SocketRef) {
    s.on("chat-message", async |_: Posting| {});
}

/// A `chat-message`, handled where socketioxide decodes it, so one connection's messages go
/// out in the order they came (its handlers are spawned tasks, which may run out of order).
struct Posting;

impl FromMessage<LocalAdapter> for Posting {
    type Error = std::convert::Infallible;

    fn from_message(
        s: Arc<Socket>,
        mut v: socketioxide_core::Value,
        ack: Option<i64>,
    ) -> Result<Self, Self::Error> {
        let socket = SocketRef::from(s.clone());
        let (Some(viewer), Some(shared)) = (
            s.extensions.get::<Viewer>(),
            s.extensions.get::<Arc<Shared>>(),
        ) else {
            return Ok(Self);
        };
        let posted = Data::<Posted>::from_message_parts(&s, &mut v, &ack)
            .map_err(|_| "a chat message is {message: text}".to_owned());
        if let Err(error) = posted.and_then(|Data(p)| shared.post(&socket, &viewer, &p.message)) {
            let _ = socket.emit("chat-error", &json!({ "error": error }));
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
