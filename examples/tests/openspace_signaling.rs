//! The OpenSpace WebRTC signaling server against the JavaScript `ws` client: the original's
//! flow (an instance registers as peer 0, its browser as 100, SESSION, SDP and ICE both
//! ways), and the original's defects (any id for anyone, id 0 taken for "none", bad JSON
//! crashing the server) with the other abuse the server must refuse.

use harness::{Node, ServerProcess, WsClient, peer};
use openspace_supervisor::{SignalingConfig, SignalingServer, token};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;

const SECRET: &str = "the signaling secret of the tests";

struct Running {
    url: String,
    _stop: oneshot::Sender<()>,
}

/// A server on 127.0.0.1:0 with `configure`d settings; it stops when dropped.
async fn signaling(configure: impl FnOnce(&mut SignalingConfig)) -> Running {
    let mut config = SignalingConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    configure(&mut config);
    let server = SignalingServer::bind(config, SECRET).await.expect("bound");
    let url = format!("ws://{}", server.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running { url, _stop: stop }
}

/// A token for `peer`, valid for ten minutes.
fn token_for(peer: u32, secret: &str) -> String {
    let expires = token::unix_seconds(SystemTime::now() + Duration::from_secs(600));
    token::issue(secret.as_bytes(), peer, expires)
}

fn register(peer: u32, token: &str) -> String {
    json!({ "type": "REGISTER", "caller_id": peer, "token": token }).to_string()
}

async fn connect(node: &Node, url: &str) -> WsClient {
    let mut client = node.websocket(url, json!({})).expect("ws client started");
    client
        .opened()
        .await
        .expect("an answer")
        .expect("the WebSocket opened");
    client
}

/// A client registered as `peer` (its `REGISTER` answer read).
async fn registered(node: &Node, url: &str, peer: u32) -> WsClient {
    let mut client = connect(node, url).await;
    client
        .send_text(&register(peer, &token_for(peer, SECRET)))
        .await
        .expect("sent");
    assert_eq!(client.expect_text().await.expect("an answer"), "REGISTER");
    client
}

async fn send(client: &mut WsClient, message: &Value) {
    client.send_text(&message.to_string()).await.expect("sent");
}

/// The next frame, which must be an ERROR; its content.
async fn error(client: &mut WsClient) -> String {
    let text = client.expect_text().await.expect("an answer");
    let reply: Value = serde_json::from_str(&text).expect("the ERROR is JSON");
    assert_eq!(reply["type"], "ERROR", "{text}");
    reply["content"].as_str().expect("content").to_owned()
}

/// Instance 0 and browser 100, in a session.
async fn paired(node: &Node, url: &str) -> (WsClient, WsClient) {
    let mut instance = registered(node, url, 0).await;
    let mut browser = registered(node, url, 100).await;
    send(
        &mut browser,
        &json!({ "type": "SESSION", "caller_id": 100, "content": 0 }),
    )
    .await;
    assert_eq!(browser.expect_text().await.expect("answer"), "SESSION_OK");
    let notice: Value =
        serde_json::from_str(&instance.expect_text().await.expect("notice")).expect("JSON");
    assert_eq!(
        notice,
        json!({ "type": "SESSION", "caller_id": 100, "content": 0 })
    );
    (instance, browser)
}

#[tokio::test]
async fn an_instance_as_peer_zero_and_its_browser_pair_and_exchange_sdp_and_ice_unchanged() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let server = signaling(|_| {}).await;
    let (mut instance, mut browser) = paired(&node, &server.url).await;

    let offer = r#"{"type":"SDP","caller_id":0,"content":{"type":"offer","sdp":"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}, "extra": [1.50, "ü"]}"#;
    instance.send_text(offer).await.expect("sent");
    assert_eq!(browser.expect_text().await.expect("relayed"), offer);
    let answer = r#"{"type":"SDP","caller_id":100,"content":{"type":"answer","sdp":"v=0\r\n"}}"#;
    browser.send_text(answer).await.expect("sent");
    assert_eq!(instance.expect_text().await.expect("relayed"), answer);
    let ice = |n: u32| {
        format!(
            r#"{{"type":"ICE","content":{{"candidate":"candidate:{n} 1 udp 2122260223 127.0.0.1 5{n}000 typ host","sdpMid":"0","sdpMLineIndex":0}}}}"#
        )
    };
    instance.send_text(&ice(1)).await.expect("sent");
    assert_eq!(browser.expect_text().await.expect("relayed"), ice(1));
    browser.send_text(&ice(2)).await.expect("sent");
    assert_eq!(instance.expect_text().await.expect("relayed"), ice(2));

    // The browser leaves: the instance is told, and may take a new session.
    browser.close(1000, "bye").await.expect("closing");
    let end: Value =
        serde_json::from_str(&instance.expect_text().await.expect("told")).expect("JSON");
    assert_eq!(
        end,
        json!({ "type": "SESSION_END", "caller_id": 100, "content": "disconnected" })
    );
    // Its browser's id is free again.
    registered(&node, &server.url, 100).await;
}

#[tokio::test]
async fn register_needs_a_valid_token_for_that_very_id() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let server = signaling(|_| {}).await;
    let mut client = connect(&node, &server.url).await;
    let refused = [
        (
            register(0, &token_for(0, "not the server's secret at all")),
            "REGISTER refused: the token is invalid",
        ),
        (
            register(0, &token_for(100, SECRET)),
            "REGISTER refused: the token is for peer 100, not 0",
        ),
        (
            register(0, "0.99999999999.forged"),
            "REGISTER refused: the token is malformed",
        ),
        (
            json!({ "type": "REGISTER", "caller_id": 0 }).to_string(),
            "malformed message: REGISTER needs a token",
        ),
    ];
    for (message, why) in refused {
        client.send_text(&message).await.expect("sent");
        assert_eq!(error(&mut client).await, why, "{message}");
    }
    // Still unregistered, and still connected.
    send(&mut client, &json!({ "type": "SESSION", "content": 100 })).await;
    assert_eq!(
        error(&mut client).await,
        "not registered: send REGISTER first"
    );
    client
        .send_text(&register(0, &token_for(0, SECRET)))
        .await
        .expect("sent");
    assert_eq!(client.expect_text().await.expect("answer"), "REGISTER");
}

#[tokio::test]
async fn bad_json_is_answered_and_the_connection_keeps_working() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let server = signaling(|config| config.max_message_bytes = 2048).await;
    let mut client = connect(&node, &server.url).await;
    for (text, starts) in [
        ("{\"type\": \"REGISTER\", oops", "malformed JSON: "),
        ("hello", "malformed JSON: "),
        ("[0]", "malformed message: expected a JSON object"),
        (r#"{"type":"HELLO"}"#, "unknown message type: HELLO"),
        (r#"{"type":"SDP","content":{}}"#, "not registered"),
    ] {
        client.send_text(text).await.expect("sent");
        let why = error(&mut client).await;
        assert!(why.starts_with(starts), "{text}: {why}");
    }
    let big = json!({ "type": "SDP", "content": "a".repeat(3000) }).to_string();
    client.send_text(&big).await.expect("sent");
    assert_eq!(
        error(&mut client).await,
        format!("message too large: {} bytes, the limit is 2048", big.len())
    );
    client
        .send_text(&register(0, &token_for(0, SECRET)))
        .await
        .expect("sent");
    assert_eq!(client.expect_text().await.expect("answer"), "REGISTER");
    // Far beyond the limit, the frame itself is refused and the connection closed: with
    // 1009, or, when the server's close crosses the rest of the frame still on its way and
    // the kernel resets the connection, abnormally (1006).
    let huge = json!({ "type": "SDP", "content": "a".repeat(1_200_000) }).to_string();
    client.send_text(&huge).await.expect("sent");
    let code = client.expect_close().await.expect("closed").0;
    assert!(code == 1009 || code == 1006, "closed with {code}");
}

#[tokio::test]
async fn a_session_waits_for_its_partner_and_expires_into_an_error() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let server = signaling(|config| config.pending_session_ttl = Duration::from_secs(1)).await;
    let mut browser = registered(&node, &server.url, 101).await;
    send(&mut browser, &json!({ "type": "SESSION", "content": "1" })).await;
    assert_eq!(
        error(&mut browser).await,
        "SESSION expired: peer 1 did not register within 1s"
    );
    // Waiting long enough, the partner's REGISTER opens the session.
    let patient = signaling(|_| {}).await;
    let mut browser = registered(&node, &patient.url, 102).await;
    send(&mut browser, &json!({ "type": "SESSION", "content": 2 })).await;
    let mut instance = registered(&node, &patient.url, 2).await;
    assert_eq!(browser.expect_text().await.expect("answer"), "SESSION_OK");
    let notice: Value =
        serde_json::from_str(&instance.expect_text().await.expect("notice")).expect("JSON");
    assert_eq!(notice["caller_id"], 102);
}

#[tokio::test]
async fn a_third_peer_cannot_inject_into_or_take_over_a_session() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let server = signaling(|_| {}).await;
    let (mut instance, mut browser) = paired(&node, &server.url).await;
    let mut intruder = registered(&node, &server.url, 7).await;

    let evil =
        json!({ "type": "SDP", "caller_id": 7, "content": { "type": "offer", "sdp": "evil" } });
    send(&mut intruder, &evil).await;
    assert!(error(&mut intruder).await.starts_with("no session"));
    send(&mut intruder, &json!({ "type": "SESSION", "content": 0 })).await;
    assert_eq!(
        error(&mut intruder).await,
        "peer 0 is busy with another session"
    );
    let spoofed = json!({ "type": "ICE", "caller_id": 100, "content": "candidate:evil" });
    send(&mut intruder, &spoofed).await;
    assert_eq!(
        error(&mut intruder).await,
        "caller_id 100 is not this connection's peer id 7"
    );
    // Registering the instance's id needs the instance's token.
    let mut impostor = connect(&node, &server.url).await;
    impostor
        .send_text(&register(0, &token_for(7, SECRET)))
        .await
        .expect("sent");
    assert!(error(&mut impostor).await.starts_with("REGISTER refused"));

    // Nothing reached the session: the next frame each side reads is its partner's.
    let marker = r#"{"type":"ICE","content":"from the instance"}"#;
    instance.send_text(marker).await.expect("sent");
    assert_eq!(browser.expect_text().await.expect("relayed"), marker);
    let marker = r#"{"type":"ICE","content":"from the browser"}"#;
    browser.send_text(marker).await.expect("sent");
    assert_eq!(instance.expect_text().await.expect("relayed"), marker);
}

#[tokio::test]
async fn a_newer_connection_of_an_id_replaces_the_older() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let server = signaling(|_| {}).await;
    let (mut old, mut browser) = paired(&node, &server.url).await;
    let mut new = registered(&node, &server.url, 0).await;
    assert_eq!(
        old.expect_close().await.expect("closed"),
        (1000, "replaced by a newer connection".to_owned())
    );
    let end: Value =
        serde_json::from_str(&browser.expect_text().await.expect("told")).expect("JSON");
    assert_eq!(end["type"], "SESSION_END");
    assert_eq!(end["content"], "reconnected");
    send(&mut browser, &json!({ "type": "SESSION", "content": 0 })).await;
    assert_eq!(browser.expect_text().await.expect("answer"), "SESSION_OK");
    let notice: Value =
        serde_json::from_str(&new.expect_text().await.expect("notice")).expect("JSON");
    assert_eq!(
        notice,
        json!({ "type": "SESSION", "caller_id": 100, "content": 0 })
    );
}

#[tokio::test]
async fn the_binary_announces_its_port_and_stops_on_sigterm() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let binary = env!("CARGO_BIN_EXE_openspace-signaling");
    let mut command = tokio::process::Command::new(binary);
    command
        .args(["--listen", "127.0.0.1:0", "--pending-session-seconds", "5"])
        .env("OPENSPACE_SIGNALING_SECRET", SECRET)
        .env("RUST_LOG", "warn");
    let process = ServerProcess::spawn(command, &["signaling", "ops"])
        .await
        .expect("started");
    let addr = process.addr("signaling").expect("announced");
    let mut instance = registered(&node, &format!("ws://{addr}"), 0).await;
    let status = process
        .terminate(Duration::from_secs(15))
        .await
        .expect("stopped on SIGTERM");
    assert!(status.success(), "{status}");
    assert_eq!(
        instance.expect_close().await.expect("closed"),
        (1001, "server shutting down".to_owned())
    );

    // A short secret is refused at start.
    let mut command = tokio::process::Command::new(binary);
    command
        .args(["--listen", "127.0.0.1:0", "--token-secret", "short"])
        .env_remove("OPENSPACE_SIGNALING_SECRET");
    let refused = ServerProcess::spawn(command, &["signaling"]).await;
    assert!(refused.is_err(), "a secret under 16 bytes must be refused");
}
