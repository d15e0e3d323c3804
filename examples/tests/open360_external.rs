//! Open360's external API over a real hub: a web service (our client), an ingest service that
//! is not running, and a chat service that connects but never answers (the JavaScript
//! socket.io-client, named as the original's chat was).

use harness::{Node, http, peer};
use open360_protocol::{
    EXTERNAL_API_LABEL, ExternalApi, ExternalApiConfig, Hub, HubConfig, ServiceClient,
    SocketIoTransport, log::MemoryLog,
};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};

fn stats() -> Value {
    json!({
        "memberCount": 2,
        "members": ["ada", "bob"],
        "streamTitle": "Evening set",
        "streamDescription": "live",
        "streamTags": ["music"],
        "streamDirectory": "Music",
        "channelOwner": "ada",
        "channelStatus": { "streamStatus": "ONLINE", "code": 0 }
    })
}

#[tokio::test]
async fn the_external_api_reports_alive_dead_and_zombie_and_the_webs_answers() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let mut config = HubConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    let hub = Hub::bind(config, Arc::new(MemoryLog::new()))
        .await
        .expect("bound");
    let hub_url = format!("http://{}", hub.local_addr().expect("address"));
    let (_stop_hub, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hub.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));
    let transport = Arc::new(SocketIoTransport::new(hub_url.clone(), None));

    let web = ServiceClient::builder("web-api")
        .on("streamStatus", async |question| {
            Ok(match question.package.data["username"].as_str() {
                Some("ada") => json!({ "name": "ONLINE", "code": 0 }),
                _ => json!({ "name": "UNKNOWN", "code": 3 }),
            })
        })
        .on("streamStats", async |question| {
            match question.package.data["username"].as_str() {
                Some("ada") => Ok(stats()),
                other => Err(format!("no user {}", other.unwrap_or_default())),
            }
        })
        .start(transport.clone());
    let mut hung = node
        .socketio(
            &format!("{hub_url}/?name=open360:chat-api-server"),
            json!({}),
        )
        .expect("client started");
    hung.connected().await.expect("connected");
    let client = ServiceClient::builder(EXTERNAL_API_LABEL).start(transport);
    web.connected().await;
    client.connected().await;

    let mut config = ExternalApiConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.status_timeout = Duration::from_millis(500);
    let api = ExternalApi::bind(config, client).await.expect("bound");
    let base = format!("http://{}", api.local_addr().expect("address"));
    let (_stop_api, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));

    let status: Value = http::get_json(&format!("{base}/")).await.expect("JSON");
    assert_eq!(
        status,
        json!({ "status": { "api": "alive", "ingest": "dead", "web": "alive", "chat": "zombie" } })
    );
    // The hung chat service was asked, and did not answer.
    let asked = hung.expect_event("chat-api").await.expect("asked");
    assert_eq!(asked[0]["package"]["prompt"], "status");

    let online: Value = http::get_json(&format!("{base}/getStreamStatus?username=ada"))
        .await
        .expect("JSON");
    assert_eq!(online, json!({ "streamStatus": "ONLINE", "code": 0 }));
    let stats_of_ada: Value = http::get_json(&format!("{base}/getStreamStats?username=ada"))
        .await
        .expect("JSON");
    assert_eq!(stats_of_ada, stats());

    let client = http::client();
    for path in ["getStreamStatus", "getStreamStats"] {
        let unknown = client
            .get(format!("{base}/{path}?username=bob"))
            .send()
            .await
            .expect("answered");
        assert_eq!(unknown.status(), 404, "{path}");
        let body: Value = unknown.json().await.expect("JSON");
        assert_eq!(
            (body["streamStatus"].clone(), body["code"].clone()),
            (json!("UNKNOWN"), json!(3))
        );
        let nameless = client
            .get(format!("{base}/{path}"))
            .send()
            .await
            .expect("answered");
        assert_eq!(nameless.status(), 400, "{path}");
        let body: Value = nameless.json().await.expect("JSON");
        assert_eq!(body["error"], "username is required");
    }
}

#[tokio::test]
async fn without_a_web_service_stream_questions_are_503_and_the_status_says_dead() {
    let hub = open360_protocol::LocalHub::new();
    let client = ServiceClient::builder(EXTERNAL_API_LABEL).start(Arc::new(hub));
    client.connected().await;
    let mut config = ExternalApiConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    let api = ExternalApi::bind(config, client).await.expect("bound");
    let base = format!("http://{}", api.local_addr().expect("address"));
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));
    let absent = http::client()
        .get(format!("{base}/getStreamStatus?username=ada"))
        .send()
        .await
        .expect("answered");
    assert_eq!(absent.status(), 503);
    let body: Value = absent.json().await.expect("JSON");
    assert_eq!(
        body["error"],
        "the web service cannot answer: no service web-api is connected"
    );
    let status: Value = http::get_json(&format!("{base}/")).await.expect("JSON");
    assert_eq!(
        status,
        json!({ "status": { "api": "alive", "ingest": "dead", "web": "dead", "chat": "dead" } })
    );
}
