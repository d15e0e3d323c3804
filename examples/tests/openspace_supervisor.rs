//! The OpenSpace supervisor's command API against the `ws` package, as the original's
//! backend spoke it (one command per connection) and with many commands on one connection;
//! instances from the test launcher, then real processes.

use harness::{Node, ServerProcess, WsClient, free_port, peer};
use openspace_supervisor::{Supervisor, SupervisorConfig, TestLauncher, TokenIssuer};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};

async fn supervisor(edit: impl FnOnce(&mut SupervisorConfig)) -> (String, TestLauncher) {
    let mut config = SupervisorConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    edit(&mut config);
    let launcher = TestLauncher::new();
    let tokens: TokenIssuer = Arc::new(|peer| format!("token-for-{peer}"));
    let supervisor = Supervisor::bind(config, Arc::new(launcher.clone()), tokens)
        .await
        .expect("bound");
    let url = format!("ws://{}", supervisor.local_addr().expect("address"));
    tokio::spawn(supervisor.run(std::future::pending()));
    (url, launcher)
}

async fn connected(node: &Node, url: &str) -> WsClient {
    let mut ws = node.websocket(url, json!({})).expect("client started");
    ws.opened().await.expect("ran").expect("opened");
    ws
}

/// One command on a connection of its own, as the original's clients send them.
async fn command(node: &Node, url: &str, request: Value) -> Value {
    let mut ws = connected(node, url).await;
    ask(&mut ws, request).await
}

async fn ask(ws: &mut WsClient, request: Value) -> Value {
    ws.send_text(&request.to_string()).await.expect("sent");
    let reply = ws.expect_text().await.expect("a reply");
    serde_json::from_str(&reply).expect("JSON")
}

#[tokio::test]
async fn every_command_and_error_over_websocket_in_both_connection_styles() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let (url, launcher) = supervisor(|_| {}).await;
    assert_eq!(
        command(&node, &url, json!({ "command": "START" })).await,
        json!({ "command": "START", "error": "none", "id": 0 })
    );
    let spec = launcher.launched(1).await.remove(0);
    assert_eq!(
        (
            spec.api_port,
            spec.webrtc_id,
            spec.width,
            spec.height,
            spec.token.as_str()
        ),
        (4682, 0, 1280, 720, "token-for-0")
    );

    // Many commands on one connection.
    let mut ws = connected(&node, &url).await;
    assert_eq!(
        ask(&mut ws, json!({ "command": "STATUS", "id": 0 })).await,
        json!({ "command": "STATUS", "error": "none", "id": 0, "status": "INITIALIZING" })
    );
    launcher.make_ready(0);
    assert_eq!(
        ask(
            &mut ws,
            json!({ "command": "STATUS", "id": 0, "until": "RUNNING", "wait_ms": 10_000 })
        )
        .await["status"],
        "RUNNING"
    );
    assert_eq!(
        ask(
            &mut ws,
            json!({ "command": "RESOLUTION", "id": 0, "width": 1920, "height": 1080 })
        )
        .await,
        json!({ "command": "RESOLUTION", "error": "none", "id": 0, "width": 1920, "height": 1080 })
    );
    assert_eq!(launcher.controls(1).await[0].1, "resize 1920x1080");
    for id in [1, 2] {
        assert_eq!(ask(&mut ws, json!({ "command": "START" })).await["id"], id);
    }
    assert_eq!(
        ask(&mut ws, json!({ "command": "START" })).await,
        json!({ "command": "START", "error": "no available slots", "id": -1 })
    );
    assert_eq!(
        ask(&mut ws, json!({ "command": "SERVER_STATUS" })).await,
        json!({ "command": "SERVER_STATUS", "error": "none", "id": 0, "running": 3, "total": 3 })
    );
    assert_eq!(
        ask(&mut ws, json!({ "command": "STOP", "id": 0 })).await,
        json!({ "command": "STOP", "error": "none", "id": 0 })
    );
    assert_eq!(launcher.controls(2).await[1].1, "terminate");
    assert_eq!(
        ask(&mut ws, json!({ "command": "STATUS", "id": 0 })).await["status"],
        "DEINITIALIZING"
    );
    launcher.make_exit(0);
    assert_eq!(
        ask(
            &mut ws,
            json!({ "command": "STATUS", "id": 0, "until": "IDLE", "wait_ms": 10_000 })
        )
        .await["status"],
        "IDLE"
    );
    // A crash frees the slot too.
    launcher.make_exit(2);
    assert_eq!(
        ask(
            &mut ws,
            json!({ "command": "STATUS", "id": 2, "until": "IDLE", "wait_ms": 10_000 })
        )
        .await["status"],
        "IDLE"
    );

    // Errors: each gets a reply and the connection stays.
    ws.send_text("{not json").await.expect("sent");
    assert_eq!(
        serde_json::from_str::<Value>(&ws.expect_text().await.expect("a reply")).expect("JSON"),
        json!({ "error": "json decode error" })
    );
    assert_eq!(
        ask(&mut ws, json!({ "command": "REBOOT" })).await,
        json!({ "error": "invalid message received: REBOOT" })
    );
    assert_eq!(
        ask(&mut ws, json!({ "command": "STATUS", "id": -1 })).await,
        json!({ "command": "STATUS", "error": "invalid id", "id": -1, "status": "INVALID" })
    );
    assert_eq!(
        ask(&mut ws, json!({ "command": "STOP", "id": 7 })).await,
        json!({ "command": "STOP", "error": "invalid id", "id": -1 })
    );
    assert_eq!(
        ask(&mut ws, json!({ "command": "STOP", "id": 0 })).await,
        json!({ "command": "STOP", "error": "not running", "id": -1 })
    );
    assert_eq!(
        ask(&mut ws, json!({ "command": "SERVER_STATUS" })).await["running"],
        1,
        "only slot 1 is left"
    );
}

#[tokio::test]
async fn with_a_shared_secret_commands_without_it_are_refused() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let secret = "a shared secret for the backend";
    let (url, launcher) = supervisor(|config| config.shared_secret = Some(secret.into())).await;
    assert_eq!(
        command(&node, &url, json!({ "command": "START" })).await,
        json!({ "command": "START", "error": "unauthorized", "id": -1 })
    );
    assert_eq!(
        command(&node, &url, json!({ "command": "STATUS", "id": 0, "until": "RUNNING", "wait_ms": 60_000, "secret": "wrong" })).await,
        json!({ "command": "STATUS", "error": "unauthorized", "id": -1 }),
        "refused at once, not after waiting"
    );
    assert_eq!(
        command(&node, &url, json!({ "command": "START", "secret": secret })).await["id"],
        0
    );
    assert_eq!(launcher.launched(1).await.len(), 1);
}

#[tokio::test]
async fn real_instances_start_run_crash_time_out_and_stop_with_the_supervisor() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let base = free_port().expect("a port");
    let renderer = env!("CARGO_BIN_EXE_openspace-test-renderer");
    let instance =
        format!("{renderer} --api-port {{api_port}} --webrtc-id {{webrtc_id}} --token {{token}}");
    let mut command_line = tokio::process::Command::new(env!("CARGO_BIN_EXE_openspace-supervisor"));
    command_line
        .args(["--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
        .args(["--instance-command", &instance, "--capacity", "1"])
        .args([
            "--api-port-base",
            &base.to_string(),
            "--stop-grace-seconds",
            "5",
        ])
        .env("RUST_LOG", "info");
    let gui = tempfile::tempdir().expect("temp dir");
    std::fs::write(gui.path().join("index.html"), "<h1>Web GUI</h1>").expect("written");
    command_line
        .arg("--gui-dir")
        .arg(gui.path())
        .args(["--gui-listen", "127.0.0.1:0"]);
    let supervisor = ServerProcess::spawn(command_line, &["commands", "ops", "gui"])
        .await
        .expect("supervisor started");
    let page = harness::http::get_text(&format!(
        "http://{}/index.html",
        supervisor.addr("gui").expect("announced")
    ))
    .await
    .expect("the Web GUI");
    assert_eq!(page, "<h1>Web GUI</h1>");
    let url = format!("ws://{}", supervisor.addr("commands").expect("announced"));
    let mut ws = connected(&node, &url).await;
    let until =
        |state: &str| json!({ "command": "STATUS", "id": 0, "until": state, "wait_ms": 30_000 });

    assert_eq!(ask(&mut ws, json!({ "command": "START" })).await["id"], 0);
    assert_eq!(ask(&mut ws, until("RUNNING")).await["status"], "RUNNING");
    let mut api = connected(&node, &format!("ws://127.0.0.1:{base}")).await;
    assert_eq!(
        ask(&mut api, json!({ "topic": "camera" })).await,
        json!({ "topic": "camera", "type": "ack" })
    );
    // The instance crashes: its slot is free again.
    api.send_text(&json!({ "topic": "exit" }).to_string())
        .await
        .expect("sent");
    assert_eq!(ask(&mut ws, until("IDLE")).await["status"], "IDLE");

    // Started again and stopped: terminated, then idle.
    assert_eq!(ask(&mut ws, json!({ "command": "START" })).await["id"], 0);
    assert_eq!(ask(&mut ws, until("RUNNING")).await["status"], "RUNNING");
    assert_eq!(
        ask(&mut ws, json!({ "command": "STOP", "id": 0 })).await["error"],
        "none"
    );
    assert_eq!(ask(&mut ws, until("IDLE")).await["status"], "IDLE");

    // Running when the supervisor gets SIGTERM: it stops its instance and exits cleanly.
    assert_eq!(ask(&mut ws, json!({ "command": "START" })).await["id"], 0);
    assert_eq!(ask(&mut ws, until("RUNNING")).await["status"], "RUNNING");
    let status = supervisor
        .terminate(Duration::from_secs(20))
        .await
        .expect("stopped");
    assert!(status.success(), "{status}");
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", base)).await;
    assert!(refused.is_err(), "the instance is gone with its supervisor");
}

#[tokio::test]
async fn an_instance_that_never_gets_ready_is_killed_and_its_slot_freed() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let mut command_line = tokio::process::Command::new(env!("CARGO_BIN_EXE_openspace-supervisor"));
    command_line
        .args(["--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
        .args(["--instance-command", "sleep 600", "--capacity", "1"])
        .args(["--api-port-base", &free_port().expect("a port").to_string()])
        .args(["--init-timeout-seconds", "1"]);
    let supervisor = ServerProcess::spawn(command_line, &["commands", "ops"])
        .await
        .expect("supervisor started");
    let url = format!("ws://{}", supervisor.addr("commands").expect("announced"));
    let mut ws = connected(&node, &url).await;
    assert_eq!(ask(&mut ws, json!({ "command": "START" })).await["id"], 0);
    assert_eq!(
        ask(&mut ws, json!({ "command": "STATUS", "id": 0 })).await["status"],
        "INITIALIZING"
    );
    let freed = ask(
        &mut ws,
        json!({ "command": "STATUS", "id": 0, "until": "IDLE", "wait_ms": 30_000 }),
    )
    .await;
    assert_eq!(freed["status"], "IDLE", "{freed}");
    let metrics = harness::http::get_text(&format!(
        "http://{}/metrics",
        supervisor.addr("ops").expect("announced")
    ))
    .await
    .expect("metrics");
    assert!(
        metrics.contains("openspace_supervisor_slot_events_total{event=\"init_timeout\"} 1"),
        "{metrics}"
    );
}
