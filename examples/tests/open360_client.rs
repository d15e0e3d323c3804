//! Open360's service client (`ServiceClient`) over both transports: Socket.IO to a real hub
//! (in this process, and the `open360-hub` binary killed and restarted), and in-process. A
//! legacy service is played by the JavaScript socket.io-client.

use harness::{Node, ServerProcess, peer};
use open360_protocol::{
    AskError, Hub, HubConfig, LocalHub, ServiceClient, SocketIoTransport, Transport, log::MemoryLog,
};
use serde_json::json;
use std::{sync::Arc, time::Duration};

/// A hub in this process; its URL.
async fn hub() -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut config = HubConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    let hub = Hub::bind(config, Arc::new(MemoryLog::new()))
        .await
        .expect("bound");
    let url = format!("http://{}", hub.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hub.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));
    (url, stop)
}

/// The web service's part of the seed's example, and a one-way prompt it reports.
fn web(transport: Arc<dyn Transport>, told: tokio::sync::mpsc::Sender<String>) -> ServiceClient {
    ServiceClient::builder("web-api")
        .on("checkKeyExists", async |question| {
            let key = question.package.data["streamKey"]
                .as_str()
                .unwrap_or_default();
            Ok(json!({ "exists": key == "abc" }))
        })
        .on("setOnline", move |message| {
            let told = told.clone();
            async move {
                let _ = told.send(message.package.data.to_string()).await;
                Ok(json!(null))
            }
        })
        .on("broken", async |_| Err("the database is down".to_owned()))
        .start(transport)
}

async fn services_talk_over(transport: Arc<dyn Transport>) {
    let (told, mut heard) = tokio::sync::mpsc::channel(4);
    let web = web(transport.clone(), told);
    let ingest = ServiceClient::builder("ingest-api")
        .ask_timeout(Duration::from_secs(5))
        .start(transport);
    web.connected().await;
    ingest.connected().await;

    let reply = ingest
        .ask("web-api", "checkKeyExists", json!({ "streamKey": "abc" }))
        .await
        .expect("answered");
    assert_eq!(reply.package.prompt, "checkKeyExists-reply");
    assert_eq!(reply.package.data, json!({ "exists": true }));
    let reply = ingest
        .ask("web-api", "checkKeyExists", json!({ "streamKey": "nope" }))
        .await
        .expect("answered");
    assert_eq!(reply.package.data, json!({ "exists": false }));

    let status = ingest
        .ask("web-api", "status", json!(null))
        .await
        .expect("answered");
    assert_eq!(status.package.extra["status"], "alive");
    let hub_status = ingest
        .ask("api", "status", json!(null))
        .await
        .expect("answered");
    assert_eq!(hub_status.package.data, "alive");

    assert_eq!(
        ingest.ask("chat-api", "status", json!(null)).await,
        Err(AskError::Absent("chat-api".to_owned()))
    );
    for (target, prompt, error) in [
        (
            "web-api",
            "unheard-of",
            "web-api does not handle unheard-of",
        ),
        ("web-api", "broken", "the database is down"),
    ] {
        let refused = ingest.ask(target, prompt, json!(null)).await;
        assert_eq!(refused, Err(AskError::Refused(error.to_owned())));
    }

    ingest
        .tell(
            "web-api",
            "setOnline",
            json!({ "username": "ada", "online": true }),
        )
        .await
        .expect("told");
    assert_eq!(
        heard.recv().await.expect("heard"),
        r#"{"online":true,"username":"ada"}"#
    );
}

#[tokio::test]
async fn services_ask_tell_and_answer_through_the_socketio_hub() {
    let (url, _stop) = hub().await;
    services_talk_over(Arc::new(SocketIoTransport::new(url, None))).await;
}

#[tokio::test]
async fn services_ask_tell_and_answer_in_process() {
    services_talk_over(Arc::new(LocalHub::new())).await;
}

#[tokio::test]
async fn a_legacy_service_without_request_ids_is_answered_by_prompt() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let (url, _stop) = hub().await;
    let mut legacy = node
        .socketio(&format!("{url}/?name=open360:web-api"), json!({}))
        .expect("client started");
    legacy.connected().await.expect("connected");
    let ingest = ServiceClient::builder("ingest-api")
        .ask_timeout(Duration::from_millis(500))
        .start(Arc::new(SocketIoTransport::new(url, None)));
    ingest.connected().await;

    let asking = {
        let ingest = ingest.clone();
        tokio::spawn(async move {
            ingest
                .ask("web-api", "streamStatus", json!({ "username": "ada" }))
                .await
        })
    };
    let question = legacy.expect_event("web-api").await.expect("asked");
    assert_eq!(question[0]["type"], "question");
    assert!(question[0]["requestId"].is_string());
    // The original's reply: no request id, a numeric type.
    legacy
        .emit(
            "api-message",
            vec![json!({
                "target": "ingest-api", "ack": "web-api", "type": 0,
                "package": { "prompt": "streamStatus-reply", "data": { "name": "ONLINE", "code": 1 } }
            })],
        )
        .await
        .expect("replied");
    let reply = asking.await.expect("joined").expect("answered");
    assert_eq!(reply.package.data["name"], "ONLINE");

    // It does not answer this one: the question times out.
    let unanswered = ingest.ask("web-api", "streamStats", json!(null)).await;
    assert!(
        matches!(unanswered, Err(AskError::Timeout { ref target, .. }) if target == "web-api"),
        "{unanswered:?}"
    );
}

#[tokio::test]
async fn a_client_links_again_when_its_hub_comes_back() {
    let port = harness::free_port().expect("a free port");
    let dir = tempfile::tempdir().expect("temp dir");
    let start_hub = || {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_open360-hub"));
        command
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--database-url")
            .arg(format!(
                "sqlite://{}",
                dir.path().join("hub.sqlite3").display()
            ));
        ServerProcess::spawn(command, &["hub"])
    };
    let first = start_hub().await.expect("hub started");
    let url = format!("http://127.0.0.1:{port}");
    let (told, _heard) = tokio::sync::mpsc::channel(4);
    let web = web(Arc::new(SocketIoTransport::new(url.clone(), None)), told);
    let ingest =
        ServiceClient::builder("ingest-api").start(Arc::new(SocketIoTransport::new(url, None)));
    web.connected().await;
    ingest.connected().await;
    let mut link = ingest.link_state();
    let mut web_link = web.link_state();

    // A question to a service that never answers is waiting when the hub goes: it fails then,
    // long before its timeout.
    let (asked, mut heard) = tokio::sync::mpsc::channel::<()>(1);
    let slow = ServiceClient::builder("slow-api")
        .on("never", move |_| {
            let asked = asked.clone();
            async move {
                let _ = asked.send(()).await;
                std::future::pending().await
            }
        })
        .start(Arc::new(SocketIoTransport::new(
            format!("http://127.0.0.1:{port}"),
            None,
        )));
    slow.connected().await;
    let waiting = {
        let ingest = ingest.clone();
        tokio::spawn(async move {
            ingest
                .ask_within("slow-api", "never", json!(null), Duration::from_secs(600))
                .await
        })
    };
    heard.recv().await.expect("the question arrived");

    drop(first); // killed
    // Bounded only so that a regression fails instead of hanging.
    let failed = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("failed with the link, not at its timeout");
    assert_eq!(failed.expect("joined"), Err(AskError::NotConnected));
    link.wait_for(|up| !*up).await.expect("noticed");
    web_link.wait_for(|up| !*up).await.expect("noticed");
    assert_eq!(
        ingest.ask("web-api", "status", json!(null)).await,
        Err(AskError::NotConnected)
    );
    let _second = start_hub().await.expect("hub restarted");
    link.wait_for(|up| *up).await.expect("linked again");
    web_link.wait_for(|up| *up).await.expect("linked again");
    let reply = ingest
        .ask("web-api", "checkKeyExists", json!({ "streamKey": "abc" }))
        .await
        .expect("answered after the restart");
    assert_eq!(reply.package.data, json!({ "exists": true }));
}
