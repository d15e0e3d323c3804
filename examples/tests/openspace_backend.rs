//! The OpenSpace backend and frontend against real supervisors (test launchers, so the test
//! says when an instance is ready): placement by free/total, following an instance until it
//! runs, terminating, a server that is down, and the frontend's token-only pages.

use openspace_supervisor::{
    Backend, BackendConfig, RenderingServer, Supervisor, SupervisorConfig, TestLauncher,
    TokenIssuer,
};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};

/// How long any one expected event may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

async fn supervisor(capacity: u32) -> (String, TestLauncher) {
    let mut config = SupervisorConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.capacity = capacity;
    let launcher = TestLauncher::new();
    let tokens: TokenIssuer = Arc::new(|peer| format!("token-{peer}"));
    let supervisor = Supervisor::bind(config, Arc::new(launcher.clone()), tokens)
        .await
        .expect("bound");
    let url = format!("ws://{}", supervisor.local_addr().expect("address"));
    tokio::spawn(supervisor.run(std::future::pending()));
    (url, launcher)
}

async fn backend(servers: Vec<RenderingServer>) -> String {
    backend_with(servers, |_| {}).await
}

async fn backend_with(
    servers: Vec<RenderingServer>,
    edit: impl FnOnce(&mut BackendConfig),
) -> String {
    let mut config = BackendConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.servers = servers;
    config.poll_interval = Duration::from_millis(500);
    config.down_after_failures = 1;
    edit(&mut config);
    let backend = Backend::bind(config).await.expect("bound");
    let url = format!("http://{}", backend.local_addr().expect("address"));
    tokio::spawn(backend.run(axum::Router::new(), std::future::pending()));
    url
}

fn client() -> reqwest::Client {
    harness::http::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

async fn join(http: &reqwest::Client, base: &str) -> Value {
    let response = http
        .post(format!("{base}/servers/join"))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 201);
    response.json().await.expect("JSON")
}

/// The states a session's event stream reports, read until `until`.
async fn states_until(http: &reqwest::Client, base: &str, token: &str, until: &str) -> Vec<Value> {
    let response = http
        .get(format!("{base}/session/{token}/events"))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    let mut response = response;
    let mut buffer = String::new();
    let mut states = Vec::new();
    let read = async {
        while let Some(chunk) = response.chunk().await.expect("a chunk") {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    let state: Value = serde_json::from_str(data).expect("JSON");
                    let done = state["state"] == until;
                    states.push(state);
                    if done {
                        return;
                    }
                }
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the state came in time");
    states
}

#[tokio::test]
async fn sessions_go_to_the_freest_server_and_are_followed_until_they_run() {
    let (small, small_launcher) = supervisor(1).await;
    let (big, big_launcher) = supervisor(3).await;
    let base = backend(vec![
        RenderingServer::new("small", small, "http://small:4690/frontend/"),
        RenderingServer::new("big", big, "http://big:4690/frontend/"),
    ])
    .await;
    let http = client();

    // Both empty (ratio 1): the one with more free slots. Then small (1/1 free) over big
    // (2/3), then big again as small is full.
    let first = join(&http, &base).await;
    assert_eq!(first["state"], "starting");
    assert_eq!(big_launcher.launched(1).await[0].instance.slot, 0);
    join(&http, &base).await;
    assert_eq!(small_launcher.launched(1).await[0].instance.slot, 0);
    join(&http, &base).await;
    assert_eq!(big_launcher.launched(2).await[1].instance.slot, 1);
    let servers: Value = http
        .get(format!("{base}/servers"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        servers[0],
        json!({ "name": "small", "up": true, "running": 1, "total": 1 }),
        "as the third placement found it"
    );

    let id = first["id"].as_str().expect("an id");
    let token = first["token"].as_str().expect("a token");
    big_launcher.make_ready(0);
    let states = states_until(&http, &base, token, "running").await;
    assert_eq!(
        states.last(),
        Some(&json!({ "state": "running", "url": "http://big:4690/frontend/#/streaming?id=0" }))
    );
    let view: Value = http
        .get(format!("{base}/instances/{id}"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(view["state"], "running");

    let ended: Value = http
        .put(format!("{base}/instances/{id}/terminate"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        (&ended["state"], &ended["reason"]),
        (&json!("ended"), &json!("terminated"))
    );
    assert_eq!(big_launcher.controls(1).await[0].1, "terminate");
    let missing = http
        .get(format!("{base}/instances/nope"))
        .send()
        .await
        .expect("answered");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_marked_down_and_skipped() {
    let closed = harness::free_port().expect("a port");
    let (live, launcher) = supervisor(2).await;
    let base = backend(vec![
        RenderingServer::new("gone", format!("ws://127.0.0.1:{closed}"), "http://gone/"),
        RenderingServer::new("live", live, "http://live/"),
    ])
    .await;
    let http = client();
    join(&http, &base).await;
    assert_eq!(launcher.launched(1).await.len(), 1);
    let servers: Value = http
        .get(format!("{base}/servers"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(servers[0]["up"], false, "{servers}");
    assert_eq!(servers[1]["up"], true, "{servers}");
}

#[tokio::test]
async fn the_frontend_gives_the_browser_a_token_and_nothing_else() {
    let (url, launcher) = supervisor(1).await;
    let base = backend_with(
        vec![RenderingServer::new(
            "one",
            url.clone(),
            "http://one:4690/frontend/",
        )],
        |config| config.signaling_secret = Some("the signaling secret".into()),
    )
    .await;
    let http = client();
    let index = http
        .get(&base)
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("a page");
    assert!(index.contains("action=\"/session\""), "{index}");
    let placed = http
        .post(format!("{base}/session"))
        .send()
        .await
        .expect("answered");
    assert_eq!(placed.status(), 303);
    let location = placed.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    let token = location
        .strip_prefix("/session/")
        .expect("a session page")
        .to_owned();
    let page = http
        .get(format!("{base}{location}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("a page");
    for secret in [url.as_str(), "one:4690", "localStorage", "streaming?id"] {
        assert!(!page.contains(secret), "the page shows {secret}: {page}");
    }
    let starting = states_until(&http, &base, &token, "starting").await;
    assert_eq!(starting, [json!({ "state": "starting" })]);
    launcher.launched(1).await;
    launcher.make_ready(0);
    let running = states_until(&http, &base, &token, "running").await;
    assert_eq!(
        running.last().expect("a state")["url"]
            .as_str()
            .and_then(|url| url.split_once("&token="))
            .map(|(view, _)| view),
        Some("http://one:4690/frontend/#/streaming?id=0&peer=100")
    );
    // The browser's signaling token lets it register as peer 100, and as no other.
    let view = running.last().expect("a state")["url"]
        .as_str()
        .expect("a URL")
        .to_owned();
    let (_, signaling) = view.split_once("&token=").expect("a token");
    let now = openspace_supervisor::token::unix_seconds(std::time::SystemTime::now());
    let secret = b"the signaling secret";
    assert_eq!(
        openspace_supervisor::token::verify(secret, signaling, 100, now),
        Ok(())
    );
    assert!(openspace_supervisor::token::verify(secret, signaling, 0, now).is_err());

    let ended = http
        .post(format!("{base}/session/{token}/end"))
        .send()
        .await
        .expect("answered");
    assert_eq!(ended.status(), 303);
    let states = states_until(&http, &base, &token, "ended").await;
    assert_eq!(
        states,
        [json!({ "state": "ended", "reason": "ended by you" })]
    );
    let forged = format!("{}x", token);
    let refused = http
        .get(format!("{base}/session/{forged}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), 404);
}

#[tokio::test]
async fn a_session_nobody_looks_at_is_stopped() {
    let (url, launcher) = supervisor(1).await;
    let base = backend_with(
        vec![RenderingServer::new("one", url, "http://one/")],
        |config| {
            config.poll_interval = Duration::from_millis(200);
            config.idle_session_timeout = Duration::from_secs(1);
        },
    )
    .await;
    let http = client();
    let placed = join(&http, &base).await;
    launcher.launched(1).await;
    launcher.make_ready(0);
    // Nobody asks about it, opens its page or its events: after a second it is stopped.
    let stopped = tokio::time::timeout(PATIENCE, launcher.controls(1))
        .await
        .expect("stopped in time");
    assert_eq!(stopped[0].1, "terminate");
    let id = placed["id"].as_str().expect("an id");
    let view: Value = http
        .get(format!("{base}/instances/{id}"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        (&view["state"], &view["reason"]),
        (&json!("ended"), &json!("idle"))
    );
}

#[tokio::test]
async fn the_backend_binary_reads_its_servers_from_a_file_and_refuses_none() {
    let (url, launcher) = supervisor(1).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers.json");
    let entries = json!([{ "name": "filed", "command": url, "gui": "http://filed/" }]);
    std::fs::write(&file, entries.to_string()).expect("written");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_openspace-backend"));
    command
        .args(["--listen", "127.0.0.1:0", "--servers-file"])
        .arg(&file);
    let backend = harness::ServerProcess::spawn(command, &["http"])
        .await
        .expect("started");
    let base = format!("http://{}", backend.addr("http").expect("announced"));
    join(&client(), &base).await;
    assert_eq!(launcher.launched(1).await.len(), 1);

    let none = tokio::process::Command::new(env!("CARGO_BIN_EXE_openspace-backend"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .await
        .expect("ran");
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no rendering server"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
}
