//! Open360's hub, chat and external API as separate processes, as an operator runs them,
//! talking over Socket.IO; a JavaScript chat client in the room.

use harness::{Node, ServerProcess, http, peer};
use serde_json::{Value, json};
use tokio::process::Command;

fn binary(path: &str, args: &[&str]) -> Command {
    let mut command = Command::new(path);
    command.args(args).env("RUST_LOG", "info");
    command
}

#[tokio::test]
async fn the_hub_chat_and_external_api_binaries_work_together() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("hub.sqlite3").display());
    let hub = ServerProcess::spawn(
        binary(
            env!("CARGO_BIN_EXE_open360-hub"),
            &["--listen", "127.0.0.1:0", "--database-url", &database],
        ),
        &["hub"],
    )
    .await
    .expect("hub started");
    let hub_url = format!("http://{}", hub.addr("hub").expect("announced"));
    let chat = ServerProcess::spawn(
        binary(
            env!("CARGO_BIN_EXE_open360-chat"),
            &["--listen", "127.0.0.1:0", "--hub-url", &hub_url],
        ),
        &["chat"],
    )
    .await
    .expect("chat started");
    let chat_url = format!("http://{}", chat.addr("chat").expect("announced"));
    let api = ServerProcess::spawn(
        binary(
            env!("CARGO_BIN_EXE_open360-external-api"),
            &[
                "--listen",
                "127.0.0.1:0",
                "--hub-url",
                &hub_url,
                "--status-timeout-ms",
                "500",
            ],
        ),
        &["http"],
    )
    .await
    .expect("external API started");
    let api_url = format!("http://{}", api.addr("http").expect("announced"));
    for base in [&chat_url, &api_url] {
        let ready = http::get_text(&format!("{base}/readyz?wait_seconds=20"))
            .await
            .expect("answered");
        assert_eq!(ready.trim(), "ready", "{base}");
    }

    let status: Value = http::get_json(&format!("{api_url}/")).await.expect("JSON");
    assert_eq!(
        status,
        json!({ "status": { "api": "alive", "ingest": "dead", "web": "dead", "chat": "alive" } })
    );

    let mut viewer = node
        .socketio(&format!("{chat_url}/?channel=ada&user=ada"), json!({}))
        .expect("client started");
    viewer.connected().await.expect("connected");
    viewer
        .emit("chat-message", vec![json!({ "message": "hello <world>" })])
        .await
        .expect("emitted");
    let heard = viewer
        .expect_event("chat-message")
        .await
        .expect("delivered");
    assert_eq!(heard[0]["message"], "hello &lt;world&gt;");

    // The hub logged the status questions and the viewer counts the chat told the web service
    // (which is not running: one-way messages to nobody are logged and dropped).
    let logged: Value = http::get_json(&format!("{hub_url}/messages?target=web-api"))
        .await
        .expect("JSON");
    let prompts: Vec<&str> = logged
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m["prompt"].as_str())
        .collect();
    assert!(prompts.contains(&"setViewerCount"), "{logged}");
    assert!(prompts.contains(&"status"), "{logged}");

    for process in [api, chat, hub] {
        let status = process
            .terminate(std::time::Duration::from_secs(10))
            .await
            .expect("stopped");
        assert!(status.success(), "{status}");
    }
}
