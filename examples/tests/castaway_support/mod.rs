//! A Castaway relay in the test's process, and the socket.io-client moves every Castaway test
//! makes: connecting with the seed's headers, reading a string event, being refused.

#![allow(dead_code, unreachable_pub)] // a support module: each test file uses a different part

use castaway_relay::{
    CastawayConfig, CastawayServer, StaticTokens,
    store::{Livestream, LivestreamStore, MemoryStore, NewLivestream},
};
use harness::{Node, SocketIoClient};
use serde_json::{Value, json};
use std::{net::SocketAddr, sync::Arc};

/// A running relay; it stops when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    pub store: Arc<dyn LivestreamStore>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A relay with its own memory store and `edit`ed settings.
pub async fn relay(edit: impl FnOnce(&mut CastawayConfig)) -> Relay {
    relay_on(Arc::new(MemoryStore::new()), edit).await
}

/// A relay on `store` (which other relays may share, as a cluster's nodes do).
pub async fn relay_on(
    store: Arc<dyn LivestreamStore>,
    edit: impl FnOnce(&mut CastawayConfig),
) -> Relay {
    let mut config = CastawayConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    edit(&mut config);
    let tokens = StaticTokens::new()
        .allow("artist-token", "artist-1")
        .allow("fan-token", "fan-1")
        .allow("fan-2-token", "fan-2");
    let server = CastawayServer::bind(config, Arc::new(tokens), store.clone())
        .await
        .expect("bound");
    let addr = server.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));
    Relay {
        addr,
        store,
        _stop: stop,
    }
}

impl Relay {
    /// A new livestream of `artist-1`.
    pub async fn livestream(&self) -> Livestream {
        let new = NewLivestream {
            title: "Evening set".into(),
            description: "live from the studio".into(),
            artist_name: "Ada".into(),
        };
        self.store.create("artist-1", &new).await.expect("created")
    }

    /// A client of `namespace` sending `headers` (the seed's `extraHeaders`).
    pub fn client(&self, node: &Node, namespace: &str, headers: Value) -> SocketIoClient {
        self.client_with(node, namespace, json!({ "extraHeaders": headers }))
    }

    /// A client of `namespace` with socket.io-client `options`.
    pub fn client_with(&self, node: &Node, namespace: &str, options: Value) -> SocketIoClient {
        let url = format!("http://{}{namespace}", self.addr);
        node.socketio(&url, options).expect("client started")
    }

    /// A client that is admitted, and has read its `success`.
    pub async fn admitted(
        &self,
        node: &Node,
        namespace: &str,
        token: &str,
        livestream: &str,
    ) -> SocketIoClient {
        let mut client = self.client(node, namespace, credentials(token, livestream));
        client.connected().await.expect("connected");
        let greeting = text(&mut client, "success").await;
        assert!(greeting.contains("connected as"), "{greeting}");
        client
    }
}

/// The seed's headers.
pub fn credentials(token: &str, livestream: &str) -> Value {
    json!({ "id-token": token, "livestream-id": livestream })
}

/// The next `event`'s string argument.
pub async fn text(client: &mut SocketIoClient, event: &str) -> String {
    let args = client.expect_event(event).await.expect("event");
    args[0].as_str().expect("a string").to_owned()
}

/// The next `audio` chunk's bytes.
pub async fn audio(client: &mut SocketIoClient) -> Vec<u8> {
    let args = client.expect_event("audio").await.expect("audio");
    harness::decode_binary(&args[0]).expect("binary")
}

/// Connects, then reads the one `error` and the disconnection that follow.
pub async fn refused(mut client: SocketIoClient) -> String {
    client.connected().await.expect("connected, to be told why");
    let reason = text(&mut client, "error").await;
    assert_eq!(
        client.expect_disconnect().await.expect("disconnected"),
        "io server disconnect"
    );
    reason
}

/// Reads the `error` that says the livestream ended, and the disconnection.
pub async fn ended(client: &mut SocketIoClient, livestream: &str) {
    assert_eq!(
        text(client, "error").await,
        format!("Livestream {livestream} has ended.")
    );
    assert_eq!(
        client.expect_disconnect().await.expect("disconnected"),
        "io server disconnect"
    );
}
