//! Camus servers sharing one Redis, one store and one cookie secret, with the `ws` package
//! as their clients: clients of one room on different servers see each other in `room-info`
//! and signal each other, and a server that dies takes its clients out of the rooms.

mod camus_support;

use camus_signaling::{CamusConfig, SqlStore, Store};
use camus_support::{Camus, Peer, SECRET, camus_on};
use harness::{Node, RedisPrefix, ServerProcess, peer};
use serde_json::json;
use std::{sync::Arc, time::Duration};

fn clustered(redis: &RedisPrefix) -> impl FnOnce(&mut CamusConfig) + '_ {
    |config| {
        config.redis_url = Some(redis.url().to_owned());
        config.redis_prefix = redis.prefix().to_owned();
        config.server_timeout = Duration::from_secs(1);
    }
}

/// Reads `room-info` until it lists `count` clients; returns their names in seat order.
async fn room_of(peer: &mut Peer, count: usize) -> Vec<String> {
    loop {
        let info = peer.next_of("room-info").await;
        let clients = info["data"]["clients"].as_array().expect("a list");
        if clients.len() == count {
            return clients
                .iter()
                .map(|c| c["username"].as_str().expect("a name").to_owned())
                .collect();
        }
    }
}

#[tokio::test]
async fn clients_of_one_room_on_two_servers_signal_each_other() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let Some(redis) = peer(RedisPrefix::create().await) else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(camus_signaling::MemoryStore::new());
    let a = camus_on(store.clone(), clustered(&redis)).await;
    let b = camus_on(store.clone(), clustered(&redis)).await;
    // Created on A; B loads it from the store when Ted comes.
    let room = a.create(&[("room_name", "Across")]).await;
    let elsewhere = b.create(&[("room_name", "Elsewhere")]).await;

    let mut bill = a.join(&node, &room).await;
    bill.send(
        json!({ "receiver": "ground control", "type": "profile", "data": { "username": "Bill" } }),
    )
    .await;
    let mut ted = b.join(&node, &room).await;
    assert_eq!(room_of(&mut ted, 2).await, ["Bill", "Major Tom"]);
    assert_eq!(room_of(&mut bill, 2).await, ["Bill", "Major Tom"]);

    // Directly, and to the room, across servers; the sender is who the server says.
    bill.send(json!({ "sender": "forged", "receiver": ted.id, "type": "offer", "data": { "type": "offer", "sdp": "v=0" } }))
        .await;
    assert_eq!(
        ted.next_of("offer").await,
        json!({ "sender": bill.id, "receiver": ted.id, "type": "offer", "data": { "type": "offer", "sdp": "v=0" } })
    );
    ted.send(json!({ "receiver": "room", "type": "text", "data": "hi all" }))
        .await;
    let ted_id = ted.id.clone();
    for peer in [&mut ted, &mut bill] {
        assert_eq!(
            peer.next_of("text").await,
            json!({ "sender": ted_id, "receiver": "room", "type": "text", "data": "hi all" })
        );
    }
    // A client of another room, on the other server, is out of reach.
    let stranger = b.join(&node, &elsewhere).await;
    bill.send(json!({ "receiver": stranger.id, "type": "text", "data": "psst" }))
        .await;
    assert_eq!(
        bill.next_of("error").await["data"],
        format!("No connected client {} in this room", stranger.id)
    );

    // Renamed on B, seen on A; bye on B, heard on A.
    ted.send(
        json!({ "receiver": "ground control", "type": "profile", "data": { "username": "Ted" } }),
    )
    .await;
    assert_eq!(room_of(&mut bill, 2).await, ["Bill", "Ted"]);
    ted.send(json!({ "receiver": "ground control", "type": "bye", "data": 1 }))
        .await;
    let bye = bill.next_of("bye").await;
    assert_eq!(bye["sender"], json!(ted_id));
    assert_eq!(room_of(&mut bill, 1).await, ["Bill"]);

    // A newcomer on B shows on A.
    let mut carol = b.join(&node, &room).await;
    room_of(&mut carol, 2).await;
    assert_eq!(room_of(&mut bill, 2).await, ["Bill", "Major Tom"]);
    redis.clean().await.expect("cleaned");
}

#[tokio::test]
async fn a_server_that_dies_takes_its_clients_out_of_the_rooms() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let Some(redis) = peer(RedisPrefix::create().await) else {
        return;
    };
    let data = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", data.path().join("rooms.sqlite3").display());
    let store = SqlStore::open(&database).await.expect("opened");
    let a = camus_on(Arc::new(store), clustered(&redis)).await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_camus"));
    command
        .args(["--listen", "127.0.0.1:0", "--database-url", &database])
        .args(["--secret-key", SECRET, "--data-dir"])
        .arg(data.path())
        .args(["--redis-url", redis.url(), "--redis-prefix", redis.prefix()])
        .args(["--server-timeout-ms", "1000"]);
    let process = ServerProcess::spawn(command, &["http"])
        .await
        .expect("server B started");
    let b = Camus::at(format!(
        "http://{}",
        process.addr("http").expect("announced")
    ));

    let room = b.create(&[("room_name", "Fragile")]).await;
    let mut carol = b.join(&node, &room).await;
    let mut bill = a.join(&node, &room).await;
    assert_eq!(room_of(&mut bill, 2).await.len(), 2);
    assert_eq!(room_of(&mut carol, 2).await.len(), 2);

    // Killed, B says nothing: A notices its silence and Carol leaves Bill's room.
    drop(process);
    let bye = bill.next_of("bye").await;
    assert_eq!(bye["sender"], json!(carol.id));
    assert_eq!(room_of(&mut bill, 1).await.len(), 1);
    redis.clean().await.expect("cleaned");
}
