//! The Node drivers against real servers: `ws` against tokio-tungstenite, and the official
//! socket.io-client 4.8 against socketioxide.

use axum::{Router, http::StatusCode, routing::get};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use harness::{LocalServer, Node, WsRefusal, binary, decode_binary, http, peer};
use serde_json::{Value, json};
use socketioxide::{
    SocketIo,
    extract::{AckSender, Data, SocketRef},
};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{
    Message,
    handshake::server::{Request, Response},
};

/// A WebSocket server that greets with the `x-test` request header, then echoes every frame.
async fn echo_server() -> LocalServer {
    LocalServer::spawn(|listener| async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut header = String::new();
                // The error type is tungstenite's callback signature, not ours to shrink.
                #[allow(clippy::result_large_err)]
                let capture = |request: &Request, response: Response| {
                    header = request
                        .headers()
                        .get("x-test")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    Ok(response)
                };
                let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, capture).await
                else {
                    return;
                };
                let _ = socket
                    .send(Message::text(format!("hello x-test={header}")))
                    .await;
                while let Some(Ok(message)) = socket.next().await {
                    let echo = match message {
                        // tungstenite queues the close reply itself; it goes out as the loop
                        // polls again, and then the stream ends.
                        Message::Close(_) => continue,
                        Message::Text(_) | Message::Binary(_) => message,
                        _ => continue,
                    };
                    if socket.send(echo).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
    .await
    .expect("bound")
}

#[tokio::test]
async fn ws_client_sends_headers_and_frames_and_sees_the_close() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let server = echo_server().await;
    let mut client = node
        .websocket(
            &format!("ws://{}/", server.addr()),
            json!({ "x-test": "42" }),
        )
        .expect("started");
    assert_eq!(client.opened().await.expect("answered"), Ok(()));
    assert_eq!(
        client.expect_text().await.expect("greeting"),
        "hello x-test=42"
    );

    client.send_text("ping ✓").await.expect("sent");
    assert_eq!(client.expect_text().await.expect("echo"), "ping ✓");
    client.send_binary(&[0, 1, 2, 255]).await.expect("sent");
    assert_eq!(
        client.expect_binary().await.expect("echo"),
        vec![0, 1, 2, 255]
    );

    client.close(4000, "done").await.expect("sent");
    assert_eq!(
        client.expect_close().await.expect("closed"),
        (4000, "done".to_owned())
    );
}

#[tokio::test]
async fn ws_client_reports_a_refused_upgrade_with_its_status_and_body() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let refuse = Router::new().route("/ws", get(async || (StatusCode::FORBIDDEN, "no cookie")));
    let server = http::serve(refuse).await.expect("served");
    let mut client = node
        .websocket(&format!("ws://{}/ws", server.addr()), json!({}))
        .expect("started");
    let refusal = client.opened().await.expect("answered");
    assert_eq!(
        refusal,
        Err(WsRefusal::Http {
            status: 403,
            body: "no cookie".into()
        })
    );
}

/// A Socket.IO namespace `/echo` that welcomes with the client's header and auth, echoes
/// `echo` (binary included), acknowledges `add-one`, and disconnects on `bye`.
fn socketio_router() -> Router {
    let (layer, io) = SocketIo::new_layer();
    io.ns(
        "/echo",
        async |socket: SocketRef, Data(auth): Data<Value>| {
            let header = socket
                .req_parts()
                .headers
                .get("x-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let _ = socket.emit("welcome", &json!({ "header": header, "auth": auth }));
            socket.on(
                "echo",
                async |socket: SocketRef, Data((bytes, text)): Data<(Bytes, String)>| {
                    let _ = socket.emit("echo", &(bytes, text));
                },
            );
            socket.on("add-one", async |Data(n): Data<i64>, ack: AckSender| {
                let _ = ack.send(&(n + 1));
            });
            socket.on("bye", async |socket: SocketRef| {
                let _ = socket.disconnect();
            });
        },
    );
    Router::new().layer(layer)
}

#[tokio::test]
async fn socketio_client_round_trips_events_binary_and_acks() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let server = http::serve(socketio_router()).await.expect("served");
    let options = json!({ "extraHeaders": { "x-token": "abc" }, "auth": { "user": "u1" }, "transports": ["websocket"] });
    let mut client = node
        .socketio(&server.url("/echo"), options)
        .expect("started");
    let id = client.connected().await.expect("connected");
    assert!(!id.is_empty());

    let welcome = client.expect_event("welcome").await.expect("welcomed");
    assert_eq!(
        welcome,
        vec![json!({ "header": "abc", "auth": { "user": "u1" } })]
    );

    client
        .emit("echo", vec![binary(&[1, 2, 3, 0, 255]), json!("text")])
        .await
        .expect("emitted");
    let echo = client.expect_event("echo").await.expect("echoed");
    assert_eq!(
        decode_binary(&echo[0]).expect("binary"),
        vec![1, 2, 3, 0, 255]
    );
    assert_eq!(echo[1], "text");

    assert_eq!(
        client
            .emit_with_ack("add-one", vec![json!(41)])
            .await
            .expect("acked"),
        json!(42)
    );

    client.emit("bye", vec![]).await.expect("emitted");
    assert_eq!(
        client.expect_disconnect().await.expect("disconnected"),
        "io server disconnect"
    );
    client.close().await.expect("exited");
}

#[tokio::test]
async fn socketio_client_over_polling_reports_a_missing_namespace() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let server = http::serve(socketio_router()).await.expect("served");
    let mut client = node
        .socketio(
            &server.url("/nowhere"),
            json!({ "transports": ["polling"] }),
        )
        .expect("started");
    let outcome = client.connected().await;
    let message = outcome.expect_err("no such namespace").to_string();
    assert!(message.contains("Invalid namespace"), "{message}");
}

#[tokio::test]
async fn a_script_run_to_completion_returns_its_json_output() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let events = node
        .run("versions.mjs", &json!({}), Duration::from_secs(20))
        .await
        .expect("ran");
    assert_eq!(events.len(), 1, "{events:?}");
    let versions = &events[0];
    assert_eq!(versions["type"], "versions");
    // The versions the committed lockfile pins.
    assert!(
        versions["socket.io-client"]
            .as_str()
            .is_some_and(|v| v.starts_with("4.8.")),
        "{versions}"
    );
    assert!(
        versions["ws"].as_str().is_some_and(|v| v.starts_with("8.")),
        "{versions}"
    );
    assert!(versions["playwright-core"].as_str().is_some(), "{versions}");
}

#[tokio::test]
async fn a_failing_script_is_an_error_with_its_output() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    // An unparseable argument makes every driver throw at start-up.
    let script = node
        .spawn("ws-client.mjs", &json!("{not json"))
        .expect("started");
    let failure = script
        .finish(Duration::from_secs(20))
        .await
        .expect_err("must fail")
        .to_string();
    assert!(failure.contains("ws-client.mjs exited"), "{failure}");
}
