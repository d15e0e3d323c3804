//! The whole OpenSpace flow with headless Chromium: the frontend's page asks for a session,
//! the backend places it on a supervisor, the supervisor launches the test renderer, which
//! registers with the signaling server; the session's frame loads the Web GUI, which joins
//! the renderer's WebRTC session and plays its moving picture.

use harness::{Chromium, Ffmpeg, ServerProcess, free_port, peer};
use openspace_supervisor::{
    Backend, BackendConfig, RenderingServer, SignalingConfig, SignalingServer, signaling::Pairing,
};
use serde_json::Value;
use std::time::Duration;

const SECRET: &str = "a signaling secret for the whole flow";

/// Longest any one step may take on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(60);

/// In the session's frame: waits for `frames` frames presented on the stream's video (each an
/// event), then returns the inbound video RTP bytes and the picture's size.
const PLAYING: &str = r"(async (frames) => {
  const video = document.getElementById('stream');
  for (let seen = 0; seen < frames; seen += 1) {
    await new Promise((presented) => video.requestVideoFrameCallback(presented));
  }
  const stats = await window.openspace.pc.getStats();
  let bytes = 0;
  stats.forEach((report) => {
    if (report.type === 'inbound-rtp' && report.kind === 'video') bytes += report.bytesReceived;
  });
  return { bytes, width: video.videoWidth, height: video.videoHeight };
})";

#[tokio::test]
async fn a_browser_asks_for_a_session_and_watches_the_instance_stream() {
    let Some(chromium) = peer(Chromium::locate()) else {
        return;
    };
    let Some(_ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    // The rendering server: signaling, and the supervisor launching test renderers.
    let mut config = SignalingConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    let signaling = SignalingServer::bind(config, SECRET)
        .await
        .expect("bound")
        .with_pairing(Pairing::InstanceAndBrowser {
            browser_offset: 100,
        });
    let signaling_url = format!("ws://{}", signaling.local_addr().expect("address"));
    tokio::spawn(signaling.run(std::future::pending()));
    let renderer = env!("CARGO_BIN_EXE_openspace-test-renderer");
    let instance = format!(
        "{renderer} --api-port {{api_port}} --webrtc-id {{webrtc_id}} --width 320 --height 240 \
         --signaling-url {{signaling_url}} --token {{token}}"
    );
    let gui = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openspace-supervisor/static/gui"
    );
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_openspace-supervisor"));
    command
        .args(["--listen", "127.0.0.1:0", "--ops-listen", "127.0.0.1:0"])
        .args(["--instance-command", &instance, "--capacity", "1"])
        .args(["--api-port-base", &free_port().expect("a port").to_string()])
        .args([
            "--signaling-url",
            &signaling_url,
            "--signaling-secret",
            SECRET,
        ])
        .args(["--gui-dir", gui, "--gui-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info");
    let supervisor = ServerProcess::spawn(command, &["commands", "ops", "gui"])
        .await
        .expect("supervisor started");

    // The session backend and frontend.
    let mut server = RenderingServer::new(
        "local",
        format!("ws://{}", supervisor.addr("commands").expect("announced")),
        format!(
            "http://{}/index.html",
            supervisor.addr("gui").expect("announced")
        ),
    );
    server.browser_signaling_url = Some(signaling_url);
    let mut config = BackendConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.servers = vec![server];
    config.signaling_secret = Some(SECRET.into());
    let backend = Backend::bind(config).await.expect("bound");
    let frontend = format!("http://{}/", backend.local_addr().expect("address"));
    tokio::spawn(backend.run(axum::Router::new(), std::future::pending()));

    let browser = chromium.launch().await.expect("Chromium started");
    let page = browser.new_page().await.expect("a page");
    assert_eq!(page.goto(&frontend).await.expect("loaded"), Some(200));
    page.evaluate("setTimeout(() => document.querySelector('form').submit(), 0); true")
        .await
        .expect("asked for a session");
    page.wait_for(
        "location.pathname.startsWith('/session/') && document.querySelector('iframe')",
        STEP,
    )
    .await
    .expect("the session runs and its view loads");
    let address: Value = page
        .evaluate("location.href")
        .await
        .expect("the page's address");
    assert!(
        !address.as_str().expect("text").contains("4690")
            && !address.as_str().expect("text").contains("id="),
        "the page's own address holds only the token: {address}"
    );
    page.wait_for_in_frame(
        "index.html",
        "document.getElementById('stream').srcObject",
        STEP,
    )
    .await
    .expect("the instance's stream arrived");
    let first = page
        .evaluate_in_frame("index.html", &format!("{PLAYING}(3)"))
        .await
        .expect("frames");
    let later = page
        .evaluate_in_frame("index.html", &format!("{PLAYING}(15)"))
        .await
        .expect("more frames");
    let bytes = |v: &Value| v["bytes"].as_u64().expect("a number");
    assert!(
        bytes(&first) > 0 && bytes(&later) > bytes(&first),
        "{first} then {later}"
    );
    assert_eq!(
        (&later["width"], &later["height"]),
        (&Value::from(320), &Value::from(240))
    );
    browser.close().await.expect("closed");
    drop(supervisor);
}
