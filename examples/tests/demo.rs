//! The demo binary as an operator runs it: a real process on 127.0.0.1:0.

use harness::{HarnessError, ServerProcess, http};
use serde_json::Value;
use std::time::Duration;
use tokio::process::Command;

fn demo(data_dir: &std::path::Path, listen: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_demo"));
    command
        .args([
            "--listen",
            listen,
            "--coordinator-rtmp",
            "127.0.0.1:0",
            "--castaway-listen",
            "127.0.0.1:0",
            "--camus-listen",
            "127.0.0.1:0",
            "--openspace-listen",
            "127.0.0.1:0",
            "--open360-web",
            "127.0.0.1:0",
            "--open360-rtmp",
            "127.0.0.1:0",
            "--open360-chat",
            "127.0.0.1:0",
            "--open360-external",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .args([
            "--openspace-api-port-base",
            &harness::free_port().expect("a port").to_string(),
        ])
        .env("RUST_LOG", "info");
    command
}

#[tokio::test]
async fn the_demo_serves_its_landing_page_health_and_metrics_then_stops_on_sigterm() {
    let data = tempfile::tempdir().expect("temp dir");
    let data_dir = data.path().join("data");
    let demo = ServerProcess::spawn(
        demo(&data_dir, "127.0.0.1:0"),
        &[
            "landing",
            "coordinator-rtmp",
            "castaway",
            "camus",
            "openspace",
            "open360",
        ],
    )
    .await
    .expect("demo started");
    let base = format!(
        "http://{}",
        demo.addr("landing").expect("landing announced")
    );
    let client = http::client();

    for _ in 0..2 {
        let page = client
            .get(format!("{base}/"))
            .send()
            .await
            .expect("answered");
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("body");
        for name in [
            "Open360",
            "Castaway",
            "OpenSpace WebRTC",
            "Streaming coordinator",
            "Camus",
            "camus-signaling",
        ] {
            assert!(html.contains(name), "landing page lacks {name}");
        }
    }

    let services: Value = http::get_json(&format!("{base}/services.json"))
        .await
        .expect("JSON");
    assert_eq!(services.as_array().map(Vec::len), Some(5));
    let coordinator = services
        .as_array()
        .and_then(|all| all.iter().find(|s| s["crate_name"] == "coordinator-core"))
        .expect("listed");
    assert_eq!(coordinator["availability"]["status"], "running");
    assert_eq!(
        coordinator["availability"]["url"],
        format!("{base}/coordinator/").as_str()
    );
    let castaway = demo.addr("castaway").expect("announced");
    let livestreams: Value = http::get_json(&format!("http://{castaway}/api/livestreams"))
        .await
        .expect("JSON");
    assert_eq!(livestreams[0]["artistId"], "demo-artist", "{livestreams}");
    let camus = demo.addr("camus").expect("announced");
    let listed = services
        .as_array()
        .and_then(|all| all.iter().find(|s| s["crate_name"] == "camus-signaling"))
        .expect("listed");
    assert_eq!(
        listed["availability"]["url"],
        format!("http://{camus}/").as_str()
    );
    let rooms = http::get_text(&format!("http://{camus}/"))
        .await
        .expect("body");
    assert!(rooms.contains("name=\"room_name\""), "{rooms}");
    let openspace = demo.addr("openspace").expect("announced");
    let page = http::get_text(&format!("http://{openspace}/"))
        .await
        .expect("body");
    assert!(page.contains("action=\"/session\""), "{page}");
    let open360 = demo.addr("open360").expect("announced");
    let listed = services
        .as_array()
        .and_then(|all| all.iter().find(|s| s["crate_name"] == "open360-protocol"))
        .expect("listed");
    assert_eq!(listed["availability"]["status"], "running");
    let home = http::get_text(&format!("http://{open360}/"))
        .await
        .expect("body");
    assert!(home.contains("/signup"), "{home}");
    let rtmp = demo.addr("coordinator-rtmp").expect("announced");
    let page = http::get_text(&format!("{base}/coordinator/"))
        .await
        .expect("body");
    assert!(
        page.contains(&format!("rtmp://{rtmp}/demo/any-key")),
        "{page}"
    );

    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        (
            health.status().as_u16(),
            health.text().await.expect("body").as_str()
        ),
        (200, "ok")
    );

    let metrics = http::get_text(&format!("{base}/metrics"))
        .await
        .expect("body");
    let views = metrics
        .lines()
        .find(|line| line.starts_with("demo_page_views_total{page=\"landing\"}"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok());
    assert_eq!(views, Some(2.0), "metrics:\n{metrics}");

    assert!(data_dir.is_dir(), "the data directory was not created");
    let status = demo
        .terminate(Duration::from_secs(10))
        .await
        .expect("stopped");
    assert!(status.success(), "demo exited with {status}");
}

#[tokio::test]
async fn an_address_in_use_is_a_clear_error_and_a_failed_exit() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
    let addr = taken.local_addr().expect("address").to_string();
    let data = tempfile::tempdir().expect("temp dir");
    match ServerProcess::spawn(demo(data.path(), &addr), &["landing"]).await {
        Err(HarnessError::ProcessFailed { status, output, .. }) => {
            assert_eq!(status.code(), Some(1));
            assert!(
                output.contains(&format!("cannot listen on {addr}")),
                "{output}"
            );
        }
        Err(other) => panic!("expected a failed exit, got {other}"),
        Ok(_) => panic!("the demo started on an address already in use"),
    }
}

#[tokio::test]
async fn a_malformed_flag_is_refused_before_anything_starts() {
    let data = tempfile::tempdir().expect("temp dir");
    match ServerProcess::spawn(demo(data.path(), "not-an-address"), &["landing"]).await {
        Err(HarnessError::ProcessFailed { status, output, .. }) => {
            assert_eq!(status.code(), Some(2), "clap's usage error");
            assert!(output.contains("--listen"), "{output}");
        }
        Err(other) => panic!("expected a usage error, got {other}"),
        Ok(_) => panic!("the demo started with a malformed address"),
    }
}
