//! Open360's internal API hub against the official JavaScript socket.io-client 4.8, playing the
//! seed's own example: the ingest service asks the web service whether a stream key exists.

use harness::{Node, SocketIoClient, http, peer};
use open360_protocol::{Hub, HubConfig, log::MemoryLog};
use serde_json::{Value, json};
use std::{net::SocketAddr, sync::Arc};

struct Running {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn hub(token: Option<&str>) -> Running {
    let mut config = HubConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.token = token.map(str::to_owned);
    let hub = Hub::bind(config, Arc::new(MemoryLog::new()))
        .await
        .expect("bound");
    let addr = hub.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hub.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));
    Running { addr, _stop: stop }
}

impl Running {
    /// A service connected as the seed's services do (`?name=open360:<label>`) or with `auth`.
    async fn service(&self, node: &Node, url_suffix: &str, options: Value) -> SocketIoClient {
        let url = format!("http://{}/{url_suffix}", self.addr);
        let mut client = node.socketio(&url, options).expect("client started");
        client.connected().await.expect("connected");
        client
    }
}

async fn ask(client: &mut SocketIoClient, message: Value) {
    client
        .emit("api-message", vec![message])
        .await
        .expect("emitted");
}

#[tokio::test]
async fn a_question_reaches_only_its_service_and_its_reply_comes_back() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let hub = hub(None).await;
    let mut web = hub
        .service(&node, "?name=open360:web-api-server", json!({}))
        .await;
    let mut ingest = hub
        .service(&node, "", json!({ "auth": { "service": "ingest-api" } }))
        .await;
    let mut chat = hub
        .service(
            &node,
            "",
            json!({ "query": { "name": "open360:chat-api" } }),
        )
        .await;

    // The seed's question, with our request id.
    let question = json!({
        "target": "web-api",
        "ack": "ingest-api",
        "type": "question",
        "requestId": "q-1",
        "package": {
            "prompt": "checkKeyExists",
            "data": { "streamKey": "abc" },
            "message": "Checking Stream Key"
        }
    });
    ask(&mut ingest, question.clone()).await;
    let relayed = web.expect_event("web-api").await.expect("relayed");
    assert_eq!(relayed[0], question, "relayed unchanged");

    // The reply, the original's way: a message to the asker's label.
    let reply = json!({
        "target": "ingest-api",
        "ack": "web-api",
        "type": 0,
        "requestId": "q-1",
        "package": { "prompt": "checkKeyExists-reply", "data": { "exists": true }, "message": "Ok" }
    });
    ask(&mut web, reply.clone()).await;
    let answered = ingest.expect_event("ingest-api").await.expect("answered");
    assert_eq!(answered[0], reply);

    // A question to a service nobody runs is answered at once, with an error.
    ask(
        &mut ingest,
        json!({ "target": "nobody-api", "ack": "ingest-api", "type": 1, "requestId": "q-2",
                "package": { "prompt": "status" } }),
    )
    .await;
    let refused = ingest.expect_event("ingest-api").await.expect("answered");
    assert_eq!(refused[0]["package"]["prompt"], "status-reply");
    assert_eq!(
        refused[0]["package"]["error"],
        "no service nobody-api is connected"
    );
    assert_eq!(refused[0]["requestId"], "q-2");

    // The hub answers for itself.
    ask(
        &mut chat,
        json!({ "target": "api", "ack": "chat-api", "type": "question", "package": { "prompt": "status" } }),
    )
    .await;
    // The first thing the chat service hears: the messages between the other two never
    // reached it.
    let (event, status) = chat.next_event().await.expect("answered");
    assert_eq!(event, "chat-api");
    assert_eq!(status[0]["package"]["status"], "alive");

    // Not an api-message: the sender is told; nobody else hears of it.
    ask(&mut web, json!({ "target": "ingest-api" })).await;
    let error = web.expect_event("api-error").await.expect("told");
    assert!(
        error[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not an api-message"),
        "{error:?}"
    );

    let logged: Value = http::get_json(&format!("http://{}/messages", hub.addr))
        .await
        .expect("log");
    let prompts: Vec<&str> = logged
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m["prompt"].as_str())
        .collect();
    assert_eq!(
        prompts,
        ["status", "status", "checkKeyExists-reply", "checkKeyExists"],
        "newest first: {logged}"
    );
    assert_eq!(logged[3]["from"], "ingest-api");
    assert_eq!(logged[3]["target"], "web-api");
    assert_eq!(logged[3]["type"], "question");
    assert_eq!(logged[3]["message"], "Checking Stream Key");
    let to_web: Value = http::get_json(&format!("http://{}/messages?target=web-api", hub.addr))
        .await
        .expect("log");
    assert_eq!(to_web.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn with_a_hub_token_only_services_that_present_it_join() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let hub = hub(Some("hub-token-for-the-tests")).await;
    let url = format!("http://{}/", hub.addr);
    for options in [
        json!({ "auth": { "service": "web-api" } }),
        json!({ "auth": { "service": "web-api", "token": "guess" } }),
        json!({ "query": { "name": "open360:web-api" } }),
    ] {
        let mut stranger = node
            .socketio(&url, options.clone())
            .expect("client started");
        let refused = stranger.connected().await.expect_err("refused");
        assert!(
            refused.to_string().contains("unauthorized"),
            "{options}: {refused}"
        );
    }
    let nameless = node
        .socketio(
            &url,
            json!({ "auth": { "token": "hub-token-for-the-tests" } }),
        )
        .expect("client started");
    let mut nameless = nameless;
    let refused = nameless.connected().await.expect_err("refused");
    assert!(
        refused.to_string().contains("must give its name"),
        "{refused}"
    );

    let mut web = hub
        .service(
            &node,
            "?name=open360:web-api&token=hub-token-for-the-tests",
            json!({}),
        )
        .await;
    let mut ingest = hub
        .service(
            &node,
            "",
            json!({ "auth": { "service": "ingest-api", "token": "hub-token-for-the-tests" } }),
        )
        .await;
    let message = json!({ "target": "web-api", "ack": "ingest-api", "type": "message",
                          "package": { "prompt": "setOnline", "data": { "online": true } } });
    ask(&mut ingest, message.clone()).await;
    assert_eq!(
        web.expect_event("web-api").await.expect("relayed")[0],
        message
    );

    let client = http::client();
    let log = format!("http://{}/messages", hub.addr);
    let anonymous = client.get(&log).send().await.expect("answered");
    assert_eq!(anonymous.status(), 401);
    let allowed = client
        .get(&log)
        .bearer_auth("hub-token-for-the-tests")
        .send()
        .await
        .expect("answered");
    assert_eq!(allowed.status(), 200);
}

#[tokio::test]
async fn the_hub_binary_serves_its_log_health_and_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("hub.sqlite3").display());
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_open360-hub"));
    command
        .args(["--listen", "127.0.0.1:0", "--database-url", &database])
        .env("RUST_LOG", "info");
    let process = harness::ServerProcess::spawn(command, &["hub"])
        .await
        .expect("started");
    let base = format!("http://{}", process.addr("hub").expect("announced"));
    let logged: Value = http::get_json(&format!("{base}/messages"))
        .await
        .expect("log");
    assert_eq!(logged, json!([]));
    let health = http::get_text(&format!("{base}/healthz"))
        .await
        .expect("health");
    assert_eq!(health, "ok");
    let metrics = http::client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    let status = process
        .terminate(std::time::Duration::from_secs(10))
        .await
        .expect("stopped");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_question_to_a_service_too_far_behind_is_refused_at_once() {
    use futures::StreamExt as _;
    use open360_protocol::{AskError, ServiceClient, SocketIoTransport};
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let mut config = HubConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.max_queued_per_socket = 16;
    let hub = Hub::bind(config, Arc::new(MemoryLog::new()))
        .await
        .expect("bound");
    let url = format!("http://{}", hub.local_addr().expect("address"));
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hub.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));
    let mut slow = node
        .socketio(&url, json!({ "auth": { "service": "slow-api" } }))
        .expect("client started");
    slow.connected().await.expect("connected");
    let asker = ServiceClient::builder("ingest-api")
        .start(Arc::new(SocketIoTransport::new(url.clone(), None)));
    asker.connected().await;

    // The slow service's process stops reading: once the kernel's buffers and the hub's queue
    // of 16 are full, a question for it is answered by the hub, long before the asker's timeout.
    let pid = slow.script().pid().expect("running");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("stopped");
    let data = json!({ "padding": "x".repeat(64 << 10) });
    let timeout = std::time::Duration::from_secs(60);
    let mut asks: futures::stream::FuturesUnordered<_> = (0..400)
        .map(|_| asker.ask_within("slow-api", "work", data.clone(), timeout))
        .collect();
    let first = asks.next().await.expect("asked");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("continued");
    match first {
        Err(AskError::Refused(text)) => assert_eq!(
            text,
            "service slow-api is too far behind; the question was not delivered"
        ),
        other => panic!("expected the hub's refusal, got {other:?}"),
    }
}
