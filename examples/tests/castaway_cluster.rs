//! Castaway nodes sharing one Redis and one livestream store, with the official
//! socket.io-client: a streamer on one node is heard on every node, one streamer per
//! livestream holds across nodes, and a node that dies ends its livestreams everywhere.

mod castaway_support;

use castaway_relay::{
    CastawayConfig,
    store::{LivestreamStore, MemoryStore, SqlStore},
};
use castaway_support::{Relay, audio, credentials, ended, refused, relay_on, text};
use harness::{Node, RedisPrefix, ServerProcess, peer};
use std::sync::Arc;

/// A node's settings: the test's Redis prefix, a one-second lease, and room for a fast test
/// streamer.
fn node_of(redis: &RedisPrefix) -> impl Fn(&mut CastawayConfig) + '_ {
    |config| {
        config.redis_url = Some(redis.url().to_owned());
        config.redis_prefix = redis.prefix().to_owned();
        config.cluster_lease = std::time::Duration::from_secs(1);
        config.history_chunks = 2;
        config.uploads_per_second = 1000;
        config.upload_burst = 1000;
    }
}

/// `count` distinct chunks of 32 KiB.
fn numbered_chunks(count: u8) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| (0..32usize << 10).map(|i| (i as u8) ^ n).collect())
        .collect()
}

async fn upload(streamer: &mut harness::SocketIoClient, chunk: &[u8]) {
    streamer
        .emit("upload", vec![harness::binary(chunk)])
        .await
        .expect("uploaded");
    assert_eq!(
        text(streamer, "success").await,
        "Packet received from user artist-1"
    );
}

#[tokio::test]
async fn a_streamer_on_one_node_is_heard_on_every_node() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let Some(redis) = peer(RedisPrefix::create().await) else {
        return;
    };
    let store: Arc<dyn LivestreamStore> = Arc::new(MemoryStore::new());
    let a = relay_on(store.clone(), node_of(&redis)).await;
    let b = relay_on(store.clone(), node_of(&redis)).await;
    let id = a.livestream().await.id;

    let early = b.client(&node, "/listener", credentials("fan-token", &id));
    assert_eq!(
        refused(early).await,
        format!("Livestream {id} has not started.")
    );
    let mut streamer = a.admitted(&node, "/streamer", "artist-token", &id).await;
    let second = b.client(&node, "/streamer", credentials("artist-token", &id));
    assert_eq!(
        refused(second).await,
        format!("Livestream {id} already has a streamer."),
        "one streamer per livestream, across nodes"
    );
    let mut here = a.admitted(&node, "/listener", "fan-token", &id).await;
    let mut there = b.admitted(&node, "/listener", "fan-2-token", &id).await;

    let chunks = numbered_chunks(20);
    for chunk in &chunks {
        upload(&mut streamer, chunk).await;
    }
    for listener in [&mut here, &mut there] {
        for (n, chunk) in chunks.iter().enumerate() {
            assert!(audio(listener).await == *chunk, "chunk {n} differs");
        }
    }
    // A late joiner on the other node starts with that node's copy of the history.
    let mut late = b.admitted(&node, "/listener", "fan-token", &id).await;
    for chunk in &chunks[18..] {
        assert!(audio(&mut late).await == *chunk, "not the history");
    }

    // The streamer leaves: everyone is told, and the livestream is free again.
    streamer.close().await.expect("closed");
    for listener in [&mut here, &mut there, &mut late] {
        ended(listener, &id).await;
    }
    let stored = store.get(&id).await.expect("read").expect("there");
    assert!(!stored.streamer_connected);

    // So it may stream again from the other node, and be heard on the first.
    let mut streamer = b.admitted(&node, "/streamer", "artist-token", &id).await;
    let mut here = a.admitted(&node, "/listener", "fan-token", &id).await;
    upload(&mut streamer, &chunks[0]).await;
    assert!(
        audio(&mut here).await == chunks[0],
        "heard from the new node"
    );
    redis.clean().await.expect("cleaned");
}

const SECRET: &str = "cluster-test-secret";
const PROJECT: &str = "castaway-test";

/// An HS256 ID token of `uid`, as the binary's `CASTAWAY_TOKEN_SECRET` verifier expects.
fn id_token(uid: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "sub": uid,
        "aud": PROJECT,
        "iss": castaway_relay::firebase_issuer(PROJECT),
        "iat": now,
        "exp": now + 3600,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signed")
}

#[tokio::test]
async fn a_node_that_dies_ends_its_livestreams_on_the_others() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let Some(redis) = peer(RedisPrefix::create().await) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("castaway.sqlite3").display());
    let store: Arc<dyn LivestreamStore> =
        Arc::new(SqlStore::open(&database).await.expect("opened"));

    // Node A is the binary, as an operator runs it, with a one-second lease.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_castaway"));
    command
        .args(["--listen", "127.0.0.1:0", "--database-url", &database])
        .args(["--redis-url", redis.url(), "--redis-prefix", redis.prefix()])
        .args(["--cluster-lease-seconds", "1", "--project-id", PROJECT])
        .env("CASTAWAY_TOKEN_SECRET", SECRET)
        .env("RUST_LOG", "info");
    let a = ServerProcess::spawn(command, &["http"])
        .await
        .expect("node A started");
    let a_url = format!("http://{}/streamer", a.addr("http").expect("announced"));
    let b = relay_on(store.clone(), node_of(&redis)).await;
    let id = b.livestream().await.id;

    let options = serde_json::json!({
        "extraHeaders": credentials(&id_token("artist-1"), &id)
    });
    let mut streamer = node.socketio(&a_url, options).expect("client started");
    streamer.connected().await.expect("connected");
    text(&mut streamer, "success").await;
    let mut listener = b.admitted(&node, "/listener", "fan-token", &id).await;
    upload(&mut streamer, b"from node A").await;
    assert_eq!(audio(&mut listener).await, b"from node A");

    // Node A is killed: its lease runs out, and node B ends the livestream for its listener.
    drop(a);
    ended(&mut listener, &id).await;

    // A node joining now clears the flag the dead node left; a new streamer may start.
    let stale = store.get(&id).await.expect("read").expect("there");
    assert!(stale.streamer_connected, "left set by the dead node");
    let _c: Relay = relay_on(store.clone(), node_of(&redis)).await;
    let cleared = store.get(&id).await.expect("read").expect("there");
    assert!(!cleared.streamer_connected);
    let _streamer = b.admitted(&node, "/streamer", "artist-token", &id).await;
    redis.clean().await.expect("cleaned");
}
