//! The server helpers against real servers: in-process on 127.0.0.1:0, and a foreign process
//! (Node's http module) that announces its address.

use axum::{Router, routing::get};
use harness::{HarnessError, Node, ServerProcess, http, peer};
use std::time::Duration;
use tokio::process::Command;

#[tokio::test]
async fn an_in_process_server_answers_on_its_bound_address() {
    let server = http::serve(Router::new().route("/hello", get(async || "hello from axum")))
        .await
        .expect("served");
    assert!(server.addr().ip().is_loopback());
    assert_ne!(server.addr().port(), 0);
    let body = http::client()
        .get(server.url("/hello"))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "hello from axum");
}

const ANNOUNCING_SERVER: &str = r#"
const http = require("node:http");
const server = http.createServer((request, response) => response.end("hello from node"));
server.listen(0, "127.0.0.1", () => console.log(`listening web 127.0.0.1:${server.address().port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
"#;

#[tokio::test]
async fn a_process_is_ready_once_it_announces_and_stops_on_sigterm() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let mut command = Command::new(node.program());
    command.args(["-e", ANNOUNCING_SERVER]);
    let server = ServerProcess::spawn(command, &["web"])
        .await
        .expect("announced");
    let addr = server.addr("web").expect("web listener");
    assert!(server.addr("other").is_none());

    let body = http::client()
        .get(format!("http://{addr}/"))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "hello from node");

    let status = server
        .terminate(Duration::from_secs(10))
        .await
        .expect("exited");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_process_that_exits_before_announcing_is_a_failure_with_its_output() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let mut command = Command::new(node.program());
    command.args([
        "-e",
        r#"console.error("config error: no port"); process.exit(3)"#,
    ]);
    match ServerProcess::spawn(command, &["web"]).await {
        Err(HarnessError::ProcessFailed { status, output, .. }) => {
            assert_eq!(status.code(), Some(3));
            assert!(output.contains("config error: no port"), "{output}");
        }
        Err(other) => panic!("expected ProcessFailed, got {other}"),
        Ok(_) => panic!("a process that never announced was called ready"),
    }
}

#[tokio::test]
async fn a_process_that_never_announces_times_out() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let mut command = Command::new(node.program());
    command.args([
        "-e",
        r#"console.log("listening web not-an-address"); setInterval(() => {}, 1000)"#,
    ]);
    let outcome = ServerProcess::spawn_within(command, &["web"], Duration::from_millis(1500)).await;
    assert!(
        matches!(outcome, Err(HarnessError::Timeout { .. })),
        "{:?}",
        outcome.err()
    );
}
