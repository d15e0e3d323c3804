//! The whole of Open360 in one process (the `open360` binary), driven as its users would: a
//! streamer signs up, takes a key and publishes with ffmpeg; a wrong key is refused with no file
//! written; a viewer's Chromium plays the stream on the channel page; two chat clients (the JS
//! socket.io-client, with the chat tokens their channel pages hold) talk and are counted; the
//! publisher stops and a VOD plays in ffprobe. No page or JSON response ever holds the key.

use harness::{Chromium, Ffmpeg, Node, ServerProcess, TestSignal, peer};
use serde_json::{Value, json};
use std::{path::Path, time::Duration};

const STEP: Duration = Duration::from_secs(60);

struct Site {
    base: String,
    http: reqwest::Client,
}

impl Site {
    /// Signs `username` up; the session cookie.
    async fn sign_up(&self, username: &str) -> String {
        let response = self
            .http
            .post(format!("{}/auth/signup", self.base))
            .form(&[
                ("username", username),
                ("password", "correct horse battery"),
            ])
            .send()
            .await
            .expect("signed up");
        assert_eq!(response.status(), 303, "sign-up redirects to the dashboard");
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("a session cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        cookie.split(';').next().expect("name=value").to_owned()
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> (u16, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a body"))
    }

    async fn json(&self, url: &str) -> Value {
        let response = self.http.get(url).send().await.expect("answered");
        response.json().await.expect("JSON")
    }

    /// The chat token in `username`'s view of a channel page.
    async fn chat_token(&self, channel: &str, cookie: &str) -> String {
        let (_, page) = self.get(&format!("/channel/{channel}"), Some(cookie)).await;
        let token = page
            .split("data-chat-token=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a chat token attribute");
        assert!(!token.is_empty(), "a logged-in viewer gets a chat token");
        token.to_owned()
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        found.push(path.display().to_string());
        if path.is_dir() {
            found.extend(files_under(&path));
        }
    }
    found
}

#[tokio::test]
async fn a_streamer_goes_live_and_is_watched_with_chat_then_leaves_a_vod() {
    let (Some(ffmpeg), Some(chromium), Some(node)) = (
        peer(Ffmpeg::locate()),
        peer(Chromium::locate()),
        peer(Node::locate()),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_open360"));
    command
        .args([
            "--web-listen",
            "127.0.0.1:0",
            "--rtmp-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--chat-listen",
            "127.0.0.1:0",
            "--external-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "info");
    let open360 = ServerProcess::spawn(command, &["web", "rtmp", "chat", "external"])
        .await
        .expect("open360 started");
    let address = |name| open360.addr(name).expect("announced");
    harness::http::install_crypto_provider();
    let site = Site {
        base: format!("http://{}", address("web")),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client"),
    };
    let external = format!("http://{}", address("external"));
    let rtmp = address("rtmp");

    // Sign-up, a taken name (ignoring case), and a key for its owner only.
    let alice = site.sign_up("alice").await;
    let taken = site
        .http
        .post(format!("{}/auth/signup", site.base))
        .form(&[("username", "ALICE"), ("password", "another password")])
        .send()
        .await
        .expect("answered");
    assert_eq!(taken.status(), 409);
    // Guessing a password: five wrong ones lock the name, even against the right one.
    for expected in [401, 401, 401, 401, 401, 429] {
        let password = if expected == 429 {
            "correct horse battery"
        } else {
            "wrong guess!"
        };
        let answer = site
            .http
            .post(format!("{}/auth/login", site.base))
            .form(&[("username", "alice"), ("password", password)])
            .send()
            .await
            .expect("answered");
        assert_eq!(answer.status(), expected);
    }
    let refused = site
        .http
        .post(format!("{}/auth/nsk", site.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), 401);
    let issued: Value = site
        .http
        .post(format!("{}/auth/nsk", site.base))
        .header("cookie", &alice)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    assert_eq!(issued["message"], "Ok");
    let key = issued["streamKey"].as_str().expect("a key").to_owned();
    assert!(
        key.len() == 32 && key.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{key}"
    );
    let status = site
        .json(&format!("{external}/getStreamStatus?username=alice"))
        .await;
    assert_eq!(status, json!({ "streamStatus": "OFFLINE", "code": 1 }));

    // A wrong key is refused before any file is written.
    let mut wrong = ffmpeg
        .publish(
            &format!("rtmp://{rtmp}/live/{}", "x".repeat(32)),
            &TestSignal::lasting(Duration::from_secs(5)),
        )
        .expect("ffmpeg started");
    let exit = wrong.wait(STEP).await.expect("ffmpeg ended");
    assert!(!exit.success(), "the wrong key was refused");
    assert_eq!(files_under(&dir.path().join("media")), Vec::<String>::new());

    // The right key: live, and watched. The stream lasts until the test ends it, however long a
    // loaded machine takes to get there.
    let publisher = ffmpeg
        .publish(
            &format!("rtmp://{rtmp}/live/{key}"),
            &TestSignal::lasting(Duration::from_secs(600)),
        )
        .expect("ffmpeg started");
    let live = site
        .json(&format!(
            "{}/channel/alice/stats?until=ONLINE&wait_seconds=30",
            site.base
        ))
        .await;
    assert_eq!(live["streamStatus"], "ONLINE", "{live}");
    let status = site
        .json(&format!("{external}/getStreamStatus?username=alice"))
        .await;
    assert_eq!(status, json!({ "streamStatus": "ONLINE", "code": 0 }));

    let browser = chromium.launch().await.expect("Chromium started");
    let page = browser.new_page().await.expect("a page");
    let channel_url = format!("{}/channel/alice", site.base);
    assert_eq!(page.goto(&channel_url).await.expect("loaded"), Some(200));
    page.wait_for("document.getElementById('player').currentTime > 1", STEP)
        .await
        .expect("the live stream plays in the channel page");

    // Two chat clients, named by the chat tokens of their own channel pages.
    let bob = site.sign_up("bob").await;
    let chat_url = format!("http://{}/?channel=alice", address("chat"));
    let mut writer = node
        .socketio(
            &chat_url,
            json!({ "auth": { "token": site.chat_token("alice", &alice).await } }),
        )
        .expect("a client");
    writer.connected().await.expect("alice joined the chat");
    let mut reader = node
        .socketio(
            &chat_url,
            json!({ "auth": { "token": site.chat_token("alice", &bob).await } }),
        )
        .expect("a client");
    reader.connected().await.expect("bob joined the chat");
    writer
        .emit(
            "chat-message",
            vec![json!({ "message": "hello <b>bob</b>" })],
        )
        .await
        .expect("sent");
    let heard = reader.expect_event("chat-message").await.expect("heard");
    assert_eq!(heard[0]["user"], "alice");
    assert_eq!(heard[0]["message"], "hello &lt;b&gt;bob&lt;/b&gt;");
    page.wait_for(
        "document.getElementById('chat-messages').textContent.includes('hello <b>bob</b>')",
        STEP,
    )
    .await
    .expect("the page's chat shows the message, as text");
    let stats = site
        .json(&format!("{external}/getStreamStats?username=alice"))
        .await;
    assert_eq!(stats["channelOwner"], "alice");
    assert_eq!(
        stats["channelStatus"],
        json!({ "streamStatus": "ONLINE", "code": 0 })
    );
    assert_eq!(
        stats["memberCount"], 3,
        "two chat clients and the page: {stats}"
    );
    let members = stats["members"].to_string();
    assert!(
        members.contains("alice") && members.contains("bob"),
        "{stats}"
    );

    // The channel is featured with its thumbnail, of which only the latest image is kept.
    let featured = site.json(&format!("{}/algo/featured", site.base)).await;
    assert_eq!(featured[0]["username"], "alice", "{featured}");
    let thumbnail = featured[0]["thumbnail"].as_str().expect("a thumbnail URL");
    let image = site
        .http
        .get(format!("{}{thumbnail}", site.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(image.status(), 200, "{thumbnail}");
    assert_eq!(image.headers()["content-type"], "image/jpeg");
    let jpeg = image.bytes().await.expect("an image");
    assert!(jpeg.starts_with(&[0xff, 0xd8]), "a JPEG");
    let thumbs: Vec<String> = files_under(&dir.path().join("media"))
        .into_iter()
        .filter(|path| path.contains("/thumbs/") && !path.ends_with(".tmp"))
        .collect();
    assert!(
        thumbs.len() == 1 && thumbs[0].ends_with("/thumbs/latest.jpg"),
        "{thumbs:?}"
    );

    // No public page, JSON answer, playlist or path holds the key.
    let mut seen = Vec::new();
    for path in [
        "/",
        "/channel/alice",
        "/channel/alice/stats",
        "/algo/featured",
        "/algo/recommended",
        "/video/alice/vods",
    ] {
        seen.push(site.get(path, None).await.1);
        seen.push(site.get(path, Some(&bob)).await.1);
    }
    seen.push(site.get("/channel/alice", Some(&alice)).await.1);
    let master = site.get("/video/alice/master.m3u8", None).await;
    assert_eq!(master.0, 302);
    for query in [
        "",
        "/getStreamStatus?username=alice",
        "/getStreamStats?username=alice",
    ] {
        seen.push(site.json(&format!("{external}{query}")).await.to_string());
    }
    seen.extend(files_under(&dir.path().join("media")));
    for body in &seen {
        assert!(!body.contains(&key), "a stream key leaked: {body}");
    }
    let (_, dashboard) = site.get("/dashboard", Some(&alice)).await;
    assert!(
        dashboard.contains(&key),
        "the owner sees the key on the dashboard"
    );

    // The publisher goes away: offline, with a VOD of what it sent.
    publisher.stop().await.expect("ffmpeg stopped");
    let offline = site
        .json(&format!(
            "{}/channel/alice/stats?until=OFFLINE&wait_seconds=30",
            site.base
        ))
        .await;
    assert_eq!(offline["streamStatus"], "OFFLINE", "{offline}");
    let vods = site.json(&format!("{}/video/alice/vods", site.base)).await;
    let vods = vods.as_array().expect("a list");
    assert_eq!(vods.len(), 1, "{vods:?}");
    let playlist = format!(
        "{}{}",
        site.base,
        vods[0]["playlist"].as_str().expect("a URL")
    );
    let probe = ffmpeg
        .probe(&playlist)
        .await
        .expect("the VOD plays in ffprobe");
    assert_eq!(probe.video().map(|v| v.codec_name.as_str()), Some("h264"));
    assert!(
        vods[0]["durationMs"].as_i64().unwrap_or(0) >= 2_000,
        "{vods:?}"
    );
}
