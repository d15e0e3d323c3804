//! The server on 127.0.0.1:0 with a Rust WebSocket client, for what the JavaScript client of
//! the end-to-end tests cannot easily play: a peer that stops reading.

use super::*;
use crate::{SignalingConfig, token};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async, tungstenite::Message};

const SECRET: &[u8] = b"the secret of the server tests";
const WAIT: Duration = Duration::from_secs(60);

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn server() -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = SignalingConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..SignalingConfig::default()
    };
    let server = SignalingServer::bind(config, SECRET).await.expect("bound");
    let url = format!("ws://{}", server.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    (url, stop)
}

async fn next_text(client: &mut Client) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("readable");
        if let Message::Text(text) = frame {
            return text.as_str().to_owned();
        }
    }
}

async fn registered(url: &str, peer: u32) -> Client {
    let (mut client, _) = connect_async(url).await.expect("connected");
    let expires = token::unix_seconds(SystemTime::now() + Duration::from_secs(600));
    let register = json!({
        "type": "REGISTER",
        "caller_id": peer,
        "token": token::issue(SECRET, peer, expires),
    });
    client
        .send(Message::text(register.to_string()))
        .await
        .expect("sent");
    assert_eq!(next_text(&mut client).await, REGISTERED);
    client
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_dropped_without_holding_up_its_partner() {
    let (url, _stop) = server().await;
    // The instance registers, then never reads again.
    let _instance = registered(&url, 0).await;
    let mut browser = registered(&url, 100).await;
    let session = json!({ "type": "SESSION", "content": 0 }).to_string();
    browser.send(Message::text(session)).await.expect("sent");
    assert_eq!(next_text(&mut browser).await, SESSION_OK);

    let (mut sink, mut stream) = browser.split();
    let sdp = json!({ "type": "SDP", "content": "a".repeat(200_000) }).to_string();
    let flood = tokio::spawn(async move {
        // Kernel buffers plus the queue hold some tens of megabytes; this is far more.
        for _ in 0..2000 {
            if sink.send(Message::text(sdp.clone())).await.is_err() {
                return;
            }
        }
    });
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(frame) = stream.next().await {
            if let Ok(Message::Text(text)) = frame {
                let message: Value = serde_json::from_str(text.as_str()).expect("JSON");
                if message["type"] == "SESSION_END" {
                    return message;
                }
            }
        }
        panic!("the browser's connection closed before it was told");
    })
    .await
    .expect("the browser is told in time");
    flood.abort();
    assert_eq!(
        ended,
        json!({ "type": "SESSION_END", "caller_id": 0, "content": "disconnected" })
    );
    // The id is free for the instance's next connection.
    let _again = registered(&url, 0).await;
}
