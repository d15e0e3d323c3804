//! The whole of Open360 as separate processes over a Socket.IO hub, as an operator would run
//! it on several machines: `open360-hub`, `-web`, `-ingest`, `-chat` and `-external-api`. A
//! streamer signs up and publishes with ffmpeg; the key is checked across the hub; the live
//! stream and then its VOD play in ffprobe through the web's playback URL; a chat client is
//! counted in the external API's stats.

use harness::{Ffmpeg, Node, ServerProcess, TestSignal, http, peer};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::process::Command;

const SECRET: &str = "a chat token secret for the test";

async fn start(path: &str, args: &[&str], names: &[&str]) -> ServerProcess {
    let mut command = Command::new(path);
    command.args(args).env("RUST_LOG", "info");
    ServerProcess::spawn(command, names)
        .await
        .unwrap_or_else(|e| panic!("{path} started: {e}"))
}

#[tokio::test]
async fn open360_runs_as_separate_services_over_the_hub() {
    let (Some(ffmpeg), Some(node)) = (peer(Ffmpeg::locate()), peer(Node::locate())) else {
        return;
    };
    http::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name).display().to_string();
    let database = format!("sqlite://{}", path("hub.sqlite3"));
    let hub = start(
        env!("CARGO_BIN_EXE_open360-hub"),
        &["--listen", "127.0.0.1:0", "--database-url", &database],
        &["hub"],
    )
    .await;
    let hub_url = format!("http://{}", hub.addr("hub").expect("announced"));
    let hub_args = ["--hub-url", hub_url.as_str()];
    let ingest = start(
        env!("CARGO_BIN_EXE_open360-ingest"),
        &[
            &[
                "--rtmp-listen",
                "127.0.0.1:0",
                "--media-listen",
                "127.0.0.1:0",
            ][..],
            &["--media-dir", &path("media"), "--no-thumbnails"],
            &hub_args,
        ]
        .concat(),
        &["rtmp", "media"],
    )
    .await;
    let media = format!("http://{}/media", ingest.addr("media").expect("announced"));
    let chat = start(
        env!("CARGO_BIN_EXE_open360-chat"),
        &[
            &["--listen", "127.0.0.1:0", "--token-secret", SECRET][..],
            &hub_args,
        ]
        .concat(),
        &["chat"],
    )
    .await;
    let chat_url = format!("http://{}", chat.addr("chat").expect("announced"));
    let web = start(
        env!("CARGO_BIN_EXE_open360-web"),
        &[
            &["--listen", "127.0.0.1:0", "--data-dir", &path("web")][..],
            &["--media-url", &media, "--chat-url", &chat_url],
            &["--token-secret", SECRET],
            &hub_args,
        ]
        .concat(),
        &["web"],
    )
    .await;
    let site = format!("http://{}", web.addr("web").expect("announced"));
    let api = start(
        env!("CARGO_BIN_EXE_open360-external-api"),
        &[&["--listen", "127.0.0.1:0"][..], &hub_args].concat(),
        &["http"],
    )
    .await;
    let api_url = format!("http://{}", api.addr("http").expect("announced"));
    let media_base = media.trim_end_matches("/media").to_owned();
    for base in [&site, &chat_url, &api_url, &media_base] {
        let ready = http::get_text(&format!("{base}/readyz?wait_seconds=20"))
            .await
            .expect("answered");
        assert_eq!(ready.trim(), "ready", "{base}");
    }
    let status: Value = http::get_json(&format!("{api_url}/")).await.expect("JSON");
    assert_eq!(
        status,
        json!({ "status": { "api": "alive", "ingest": "alive", "web": "alive", "chat": "alive" } })
    );

    // Sign up and take a key.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let signed_up = client
        .post(format!("{site}/auth/signup"))
        .form(&[
            ("username", "grace"),
            ("password", "a long enough password"),
        ])
        .send()
        .await
        .expect("answered");
    assert_eq!(signed_up.status(), 303);
    let cookie = signed_up
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session")
        .to_owned();
    let issued: Value = client
        .post(format!("{site}/auth/nsk"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    let key = issued["streamKey"].as_str().expect("a key");

    // Publish: the ingest asks the web service across the hub.
    let rtmp = ingest.addr("rtmp").expect("announced");
    let publisher = ffmpeg
        .publish(
            &format!("rtmp://{rtmp}/live/{key}"),
            &TestSignal::lasting(Duration::from_secs(600)),
        )
        .expect("ffmpeg started");
    let live: Value = http::get_json(&format!(
        "{site}/channel/grace/stats?until=ONLINE&wait_seconds=30"
    ))
    .await
    .expect("JSON");
    assert_eq!(live["streamStatus"], "ONLINE", "{live}");
    // The playback URL names the user; the web sends the player to the ingest's media.
    let redirect = client
        .get(format!("{site}/video/grace/master.m3u8"))
        .send()
        .await
        .expect("answered");
    assert_eq!(redirect.status(), 302);
    let location = redirect.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(location.starts_with(&format!("{media}/grace/")) && !location.contains(key));
    let probe = ffmpeg
        .probe(&location)
        .await
        .expect("the live stream plays");
    assert_eq!(probe.video().map(|v| v.codec_name.as_str()), Some("h264"));

    // A chat viewer with a token from the web service is counted in the stats.
    let page = http::get_text(&format!("{site}/channel/grace"))
        .await
        .expect("page");
    assert!(page.contains(&format!("data-chat-url=\"{chat_url}\"")));
    let token = {
        let page = client
            .get(format!("{site}/channel/grace"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("answered")
            .text()
            .await
            .expect("page");
        page.split("data-chat-token=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a token")
            .to_owned()
    };
    let mut viewer = node
        .socketio(
            &format!("{chat_url}/?channel=grace"),
            json!({ "auth": { "token": token } }),
        )
        .expect("client started");
    viewer.connected().await.expect("connected");
    let stats: Value = http::get_json(&format!("{api_url}/getStreamStats?username=grace"))
        .await
        .expect("JSON");
    assert_eq!(stats["memberCount"], 1, "{stats}");
    assert_eq!(stats["members"], json!(["grace"]), "{stats}");

    // The publisher goes away (the stream lasts until then, however loaded the machine).
    publisher.stop().await.expect("ffmpeg stopped");
    let offline: Value = http::get_json(&format!(
        "{site}/channel/grace/stats?until=OFFLINE&wait_seconds=30"
    ))
    .await
    .expect("JSON");
    assert_eq!(offline["streamStatus"], "OFFLINE", "{offline}");
    let vods: Value = http::get_json(&format!("{site}/video/grace/vods"))
        .await
        .expect("JSON");
    let playlist = vods[0]["playlist"].as_str().expect("a VOD");
    let probe = ffmpeg.probe(playlist).await.expect("the VOD plays");
    assert_eq!(probe.video().map(|v| v.codec_name.as_str()), Some("h264"));
    let status: Value = http::get_json(&format!("{api_url}/getStreamStatus?username=grace"))
        .await
        .expect("JSON");
    assert_eq!(status, json!({ "streamStatus": "OFFLINE", "code": 1 }));
}
