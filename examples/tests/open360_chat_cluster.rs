//! Open360 chat nodes sharing one Redis, with the official JavaScript socket.io-client: one
//! room space across nodes, in order; the deployment's counts and members; a node that leaves
//! or dies takes its viewers out of the counts.

use harness::{Node, RedisPrefix, ServerProcess, SocketIoClient, http, peer};
use open360_protocol::{
    Chat, ChatConfig, Hub, HubConfig, LocalHub, ServiceClient, SocketIoTransport, Transport,
    log::MemoryLog,
};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};
use tokio::sync::{oneshot, watch};

/// How long any one expected event may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(15);

/// A fake web service recording every `setViewerCount` it is told, and an asker.
struct Web {
    /// `(room, count, seq)` in arrival order.
    counts: watch::Receiver<Vec<(String, u64, u64)>>,
    asker: ServiceClient,
    _web: ServiceClient,
}

impl Web {
    async fn on(hub: Arc<dyn Transport>) -> Self {
        let (heard, counts) = watch::channel(Vec::new());
        let web = ServiceClient::builder("web-api")
            .on("setViewerCount", move |message| {
                let data = message.package.data;
                let room = data["username"].as_str().unwrap_or_default().to_owned();
                let count = data["count"].as_u64().unwrap_or(u64::MAX);
                let seq = data["seq"].as_u64().unwrap_or(0);
                heard.send_modify(|all| all.push((room, count, seq)));
                async { Ok(Value::Null) }
            })
            .start(hub.clone());
        let asker = ServiceClient::builder("web-external-api").start(hub);
        web.connected().await;
        asker.connected().await;
        Self {
            counts,
            asker,
            _web: web,
        }
    }

    /// Waits until the newest count told for `room` (the highest `seq`, whichever node told
    /// it, in whatever order they arrived) is `count`.
    async fn told(&mut self, room: &str, count: u64) {
        let newest = |all: &Vec<(String, u64, u64)>| {
            all.iter()
                .filter(|(r, _, _)| r == room)
                .max_by_key(|(_, _, seq)| *seq)
                .map(|(_, c, _)| *c)
        };
        let waited = tokio::time::timeout(
            PATIENCE,
            self.counts.wait_for(|all| newest(all) == Some(count)),
        );
        if waited.await.is_err() {
            panic!("{room} never counted {count}: {:?}", self.counts.borrow());
        }
    }

    async fn members(&self, room: &str) -> Value {
        self.asker
            .ask("chat-api", "members", json!({ "channel": room }))
            .await
            .expect("answered")
            .package
            .data
    }
}

fn node_config(redis: &RedisPrefix, lease: Duration) -> ChatConfig {
    let mut config = ChatConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.redis_url = Some(redis.url().to_owned());
    config.redis_prefix = redis.prefix().to_owned();
    config.node_lease = lease;
    config.messages_per_second = 100;
    config.message_burst = 100;
    config
}

/// A chat node in this process; its URL and its stop switch.
async fn chat_node(config: ChatConfig, hub: Arc<dyn Transport>) -> (String, oneshot::Sender<()>) {
    let chat = Chat::bind(config, Some(hub)).await.expect("bound");
    chat.linked().await;
    let url = format!("http://{}", chat.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(chat.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));
    (url, stop)
}

async fn joined(node: &Node, url: &str, query: &str) -> SocketIoClient {
    let mut client = node
        .socketio(&format!("{url}/?{query}"), json!({}))
        .expect("client started");
    client.connected().await.expect("connected");
    client
}

async fn post(client: &mut SocketIoClient, text: &str) {
    client
        .emit("chat-message", vec![json!({ "message": text })])
        .await
        .expect("emitted");
}

/// The next chat message `client` hears: `(user, message)`.
async fn heard(client: &mut SocketIoClient) -> (String, String) {
    let event = tokio::time::timeout(PATIENCE, client.expect_event("chat-message"))
        .await
        .expect("heard in time")
        .expect("a chat message");
    let text = |key: &str| event[0][key].as_str().expect("text").to_owned();
    (text("user"), text("message"))
}

#[tokio::test]
async fn two_nodes_are_one_room_space_with_one_count() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let Some(redis) = peer(RedisPrefix::create().await) else {
        return;
    };
    let hub: Arc<dyn Transport> = Arc::new(LocalHub::new());
    let mut web = Web::on(hub.clone()).await;
    let lease = Duration::from_secs(15);
    let (a, _stop_a) = chat_node(node_config(&redis, lease), hub.clone()).await;
    let (b, stop_b) = chat_node(node_config(&redis, lease), hub.clone()).await;

    let mut alice = joined(&node, &a, "channel=r&user=alice").await;
    let mut bob = joined(&node, &b, "channel=r&user=bob").await;
    let mut carol = joined(&node, &b, "channel=r").await;
    let mut dave = joined(&node, &a, "channel=other&user=dave").await;
    web.told("r", 3).await;
    web.told("other", 1).await;
    assert_eq!(
        web.members("r").await,
        json!({ "count": 3, "members": ["alice", "bob"] })
    );

    // Messages cross nodes, in the order they were posted, to the whole room only.
    for text in ["one", "two", "three"] {
        post(&mut alice, text).await;
    }
    for reader in [&mut bob, &mut carol, &mut alice] {
        for text in ["one", "two", "three"] {
            assert_eq!(heard(reader).await, ("alice".to_owned(), text.to_owned()));
        }
    }
    post(&mut bob, "<b>hi</b>").await;
    assert_eq!(
        heard(&mut alice).await,
        ("bob".to_owned(), "&lt;b&gt;hi&lt;/b&gt;".to_owned())
    );
    post(&mut dave, "anyone?").await;
    assert_eq!(
        heard(&mut dave).await,
        ("dave".to_owned(), "anyone?".to_owned()),
        "dave's room heard nothing of room r"
    );

    bob.close().await.expect("closed");
    web.told("r", 2).await;

    // Node B stops: its viewer leaves the counts at once, not when its 15 s lease runs out.
    let _ = stop_b.send(());
    web.told("r", 1).await;
    assert_eq!(
        web.members("r").await,
        json!({ "count": 1, "members": ["alice"] })
    );
    drop(carol);
    redis.clean().await.expect("cleaned");
}

#[tokio::test]
async fn a_node_that_dies_leaves_the_counts_when_its_lease_runs_out() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let Some(redis) = peer(RedisPrefix::create().await) else {
        return;
    };
    let mut config = HubConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    let hub = Hub::bind(config, Arc::new(MemoryLog::new()))
        .await
        .expect("bound");
    let hub_url = format!("http://{}", hub.local_addr().expect("address"));
    let (_stop_hub, stopped) = oneshot::channel::<()>();
    tokio::spawn(hub.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));
    let transport =
        || Arc::new(SocketIoTransport::new(hub_url.clone(), None)) as Arc<dyn Transport>;
    let mut web = Web::on(transport()).await;
    let lease = Duration::from_secs(1);
    let (a, _stop_a) = chat_node(node_config(&redis, lease), transport()).await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_open360-chat"));
    command
        .args(["--listen", "127.0.0.1:0", "--hub-url", &hub_url])
        .args(["--redis-url", redis.url(), "--redis-prefix", redis.prefix()])
        .args(["--node-lease-ms", "1000"]);
    let b = ServerProcess::spawn(command, &["chat"])
        .await
        .expect("node B started");
    let b_url = format!("http://{}", b.addr("chat").expect("announced"));
    let ready = http::get_text(&format!("{b_url}/readyz?wait_seconds=20"))
        .await
        .expect("answered");
    assert_eq!(ready.trim(), "ready");

    let mut bob = joined(&node, &b_url, "channel=r&user=bob").await;
    let mut alice = joined(&node, &a, "channel=r&user=alice").await;
    web.told("r", 2).await;
    post(&mut bob, "from B").await;
    assert_eq!(
        heard(&mut alice).await,
        ("bob".to_owned(), "from B".to_owned())
    );

    // Killed, node B cannot say its viewers left: node A notices its lease ran out.
    drop(b);
    web.told("r", 1).await;
    assert_eq!(
        web.members("r").await,
        json!({ "count": 1, "members": ["alice"] })
    );
    redis.clean().await.expect("cleaned");
}
