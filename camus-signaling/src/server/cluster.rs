//! Rooms spanning several Camus servers over one Redis pub/sub channel.
//!
//! Every server publishes, in the order its registry made them, what the others must know:
//! its clients joining, renaming and leaving rooms, and the messages for clients of other
//! servers (to one of them, or to a whole room). Every server reads every message and hands
//! the others' to its registry. A server that starts says `hello`, and the others announce
//! their clients again, so it learns who is where; every server says `alive` a few times per
//! [`server_timeout`](crate::CamusConfig::server_timeout), and one silent for that long has
//! its clients taken out of every room (as if reaped).
//!
//! The servers must share the store (PostgreSQL, or one SQLite file on one host) and the
//! cookie secret; a room created on one is loaded by another when it first hears of it. The
//! channel carries every relayed message to every server: it suits a few servers, not many.

use super::{App, Deliveries};
use crate::message::Envelope;
use crate::registry::{ClientId, Outgoing};
use futures::StreamExt as _;
use serde_json::Value;
use std::{
    collections::HashMap,
    sync::{Arc, Weak},
    time::{Duration, Instant, SystemTime},
};
use tokio::sync::mpsc;

/// What one server tells the others.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Wire {
    /// A server started: the others announce their clients again.
    Hello { server: u64 },
    /// A server is still there.
    Alive { server: u64 },
    /// A client of `server` is in `room` as `username`.
    Join {
        server: u64,
        room: String,
        client: String,
        username: String,
    },
    /// A client of `server` left `room`.
    Leave {
        server: u64,
        room: String,
        client: String,
        data: Value,
    },
    /// A message for `to` (or every client) of `room` on the other servers.
    Deliver {
        server: u64,
        room: String,
        to: Option<String>,
        envelope: Envelope,
    },
}

impl Wire {
    fn server(&self) -> u64 {
        match self {
            Self::Hello { server }
            | Self::Alive { server }
            | Self::Join { server, .. }
            | Self::Leave { server, .. }
            | Self::Deliver { server, .. } => *server,
        }
    }
}

/// This server's place in the cluster: its number and its outbox, in registry order.
pub(crate) struct Link {
    pub(crate) server: u64,
    outbox: mpsc::UnboundedSender<Wire>,
}

impl Link {
    /// Queues the cluster outputs of the registry (called under the registry's lock, so the
    /// outbox has them in the order they happened).
    pub(crate) fn queue(&self, action: Outgoing) {
        let server = self.server;
        let wire = match action {
            Outgoing::Forward { room, to, envelope } => Wire::Deliver {
                server,
                room: room.to_string(),
                to: to.map(|id| id.to_string()),
                envelope: Arc::unwrap_or_clone(envelope),
            },
            Outgoing::Announce {
                room,
                client,
                username: Some(username),
            } => Wire::Join {
                server,
                room: room.to_string(),
                client: client.to_string(),
                username,
            },
            Outgoing::Announce {
                room,
                client,
                username: None,
            } => Wire::Leave {
                server,
                room: room.to_string(),
                client: client.to_string(),
                data: Value::from(unix_ms()),
            },
            Outgoing::Send { .. } | Outgoing::Close { .. } => return,
        };
        let _ = self.outbox.send(wire);
    }

    fn say(&self, wire: Wire) {
        let _ = self.outbox.send(wire);
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Connects to Redis and subscribes; the tasks start with [`run`].
pub(crate) async fn connect(url: &str, prefix: &str) -> redis::RedisResult<(Link, Parts)> {
    let client = redis::Client::open(url)?;
    let publisher = redis::aio::ConnectionManager::new(client.clone()).await?;
    let channel = format!("{prefix}signal");
    let mut subscription = client.get_async_pubsub().await?;
    subscription.subscribe(&channel).await?;
    let (outbox, queued) = mpsc::unbounded_channel();
    let server = rand::random::<u64>() >> 11; // exact in JSON numbers
    Ok((
        Link { server, outbox },
        Parts {
            client,
            publisher,
            channel,
            subscription,
            queued,
        },
    ))
}

/// What the cluster's tasks need.
pub(crate) struct Parts {
    client: redis::Client,
    publisher: redis::aio::ConnectionManager,
    channel: String,
    subscription: redis::aio::PubSub,
    queued: mpsc::UnboundedReceiver<Wire>,
}

/// Starts publishing, listening and saying `alive`, until the server is dropped.
pub(crate) fn run(app: &Arc<App>, parts: Parts) {
    let Some(link) = app.cluster.as_ref() else {
        return;
    };
    link.say(Wire::Hello {
        server: link.server,
    });
    tokio::spawn(publish(
        parts.publisher,
        parts.channel.clone(),
        parts.queued,
    ));
    tokio::spawn(listen(
        Arc::downgrade(app),
        parts.client,
        parts.channel,
        parts.subscription,
    ));
    tokio::spawn(heartbeat(Arc::downgrade(app)));
}

/// Publishes the outbox in order, whatever is waiting at a time in one pipeline.
async fn publish(
    mut redis: redis::aio::ConnectionManager,
    channel: String,
    mut queued: mpsc::UnboundedReceiver<Wire>,
) {
    let mut batch = Vec::with_capacity(64);
    while queued.recv_many(&mut batch, 64).await > 0 {
        let mut pipe = redis::pipe();
        for wire in batch.drain(..) {
            match serde_json::to_string(&wire) {
                Ok(text) => {
                    pipe.cmd("PUBLISH").arg(&channel).arg(text).ignore();
                }
                Err(error) => tracing::error!(%error, "cluster message not written"),
            }
        }
        if let Err(error) = pipe.query_async::<()>(&mut redis).await {
            metrics::counter!("camus_cluster_publish_failures_total").increment(1);
            tracing::warn!(%error, "cannot publish to the cluster; its servers miss messages");
        }
    }
}

/// Says `alive` four times per server timeout, and takes the servers silent for a whole
/// timeout out of the rooms.
async fn heartbeat(app: Weak<App>) {
    let Some(timeout) = app.upgrade().map(|app| app.config.server_timeout) else {
        return;
    };
    let mut ticks = tokio::time::interval(timeout / 4);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(app) = app.upgrade() else {
            return;
        };
        let Some(link) = app.cluster.as_ref() else {
            return;
        };
        link.say(Wire::Alive {
            server: link.server,
        });
        let now = Instant::now();
        let silent: Vec<u64> = app.locked(|state| {
            let silent: Vec<u64> = state
                .servers
                .iter()
                .filter(|(_, heard)| now.saturating_duration_since(**heard) >= timeout)
                .map(|(server, _)| *server)
                .collect();
            for server in &silent {
                state.servers.remove(server);
            }
            silent
        });
        for server in silent {
            tracing::warn!(
                server,
                "a Camus server went silent; its clients leave their rooms"
            );
            let out = app.locked(|state| {
                let out = state
                    .registry
                    .remote_server_gone(server, Value::from(unix_ms()), now);
                state.route(out)
            });
            app.deliver(out);
        }
    }
}

/// Hands the other servers' messages to the registry, resubscribing (with backoff) when the
/// subscription breaks.
async fn listen(
    app: Weak<App>,
    client: redis::Client,
    channel: String,
    mut subscription: redis::aio::PubSub,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        {
            let mut messages = subscription.on_message();
            while let Some(message) = messages.next().await {
                backoff = Duration::from_millis(100);
                let Some(app) = app.upgrade() else {
                    return;
                };
                let wire = match serde_json::from_slice::<Wire>(message.get_payload_bytes()) {
                    Ok(wire) => wire,
                    Err(error) => {
                        metrics::counter!("camus_cluster_unreadable_total").increment(1);
                        tracing::warn!(%error, "unreadable cluster message; ignored");
                        continue;
                    }
                };
                apply(&app, wire).await;
            }
        }
        tracing::warn!("cluster subscription lost; resubscribing");
        subscription = loop {
            // A retry timer, not a wait for an event: Redis is gone until it answers.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            let fresh = async {
                let mut fresh = client.get_async_pubsub().await?;
                fresh.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(fresh)
            };
            match fresh.await {
                Ok(fresh) => break fresh,
                Err(error) => tracing::warn!(%error, "cannot resubscribe to the cluster"),
            }
        };
        // Messages were missed meanwhile: everyone announces everything again.
        if let Some(app) = app.upgrade()
            && let Some(link) = app.cluster.as_ref()
        {
            link.say(Wire::Hello {
                server: link.server,
            });
            announce_all(&app);
        }
    }
}

/// One message of another server.
async fn apply(app: &Arc<App>, wire: Wire) {
    let Some(link) = app.cluster.as_ref() else {
        return;
    };
    let from = wire.server();
    if from == link.server {
        return;
    }
    let now = Instant::now();
    app.locked(|state| state.servers.insert(from, now));
    let out: Deliveries = match wire {
        Wire::Hello { .. } => {
            announce_all(app);
            return;
        }
        Wire::Alive { .. } => return,
        Wire::Join {
            room,
            client,
            username,
            ..
        } => {
            let Some(client) = ClientId::parse(&client) else {
                return;
            };
            if !app.load_room(&room).await {
                return;
            }
            app.locked(|state| {
                let out = state
                    .registry
                    .remote_join(&room, client, &username, from, now);
                state.route(out)
            })
        }
        Wire::Leave { client, data, .. } => {
            let Some(client) = ClientId::parse(&client) else {
                return;
            };
            app.locked(|state| {
                let out = state.registry.remote_leave(&client, data, now);
                state.route(out)
            })
        }
        Wire::Deliver {
            room, to, envelope, ..
        } => {
            let to = match to.as_deref().map(ClientId::parse) {
                Some(None) => return,
                Some(Some(id)) => Some(id),
                None => None,
            };
            app.locked(|state| {
                let out = state
                    .registry
                    .remote_deliver(&room, to.as_ref(), Arc::new(envelope));
                state.route(out)
            })
        }
    };
    app.deliver(out);
}

/// Announces every client seated here, for servers that (re)joined.
fn announce_all(app: &App) {
    let Some(link) = app.cluster.as_ref() else {
        return;
    };
    let clients = app.locked(|state| state.registry.local_clients());
    for (room, client, username) in clients {
        link.say(Wire::Join {
            server: link.server,
            room: room.to_string(),
            client: client.to_string(),
            username,
        });
    }
}

/// When each other server was last heard.
pub(crate) type Heard = HashMap<u64, Instant>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_messages_read_back_as_written() {
        let envelope = Envelope::from_server("room", "text", Value::from("hi"));
        for wire in [
            Wire::Hello { server: 7 },
            Wire::Alive { server: 7 },
            Wire::Join {
                server: 7,
                room: "r".into(),
                client: "0123456789abcdef0123456789abcdef".into(),
                username: "Bill".into(),
            },
            Wire::Leave {
                server: 7,
                room: "r".into(),
                client: "0123456789abcdef0123456789abcdef".into(),
                data: Value::from(1),
            },
            Wire::Deliver {
                server: 7,
                room: "r".into(),
                to: None,
                envelope,
            },
        ] {
            let text = serde_json::to_string(&wire).expect("written");
            assert_eq!(
                serde_json::from_str::<Wire>(&text).expect("read"),
                wire,
                "{text}"
            );
        }
        let hello: Wire = serde_json::from_str(r#"{"kind":"hello","server":3}"#).expect("read");
        assert_eq!(hello.server(), 3);
    }
}
