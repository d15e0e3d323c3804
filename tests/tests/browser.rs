//! The Chromium driver against the real headless Chromium, on a page served on 127.0.0.1:0.

use axum::{Router, response::Html, routing::get};
use harness::{Chromium, HarnessError, http, peer};
use serde_json::json;
use std::time::Duration;

const PAGE: &str = r#"<!doctype html>
<title>harness</title>
<h1>harness page</h1>
<script>
  window.frames_seen = 0;
  (function count() { window.frames_seen += 1; requestAnimationFrame(count); })();
</script>"#;

async fn page_server() -> harness::LocalServer {
    http::serve(Router::new().route("/", get(async || Html(PAGE))))
        .await
        .expect("served")
}

#[tokio::test]
async fn a_page_is_loaded_evaluated_and_awaited() {
    let Some(chromium) = peer(Chromium::locate()) else {
        return;
    };
    let server = page_server().await;
    let browser = chromium.launch().await.expect("launched");
    assert!(!browser.version().is_empty());
    let page = browser.new_page().await.expect("page");

    assert_eq!(
        page.goto(&server.url("/")).await.expect("loaded"),
        Some(200)
    );
    assert_eq!(
        page.evaluate("document.querySelector('h1').textContent")
            .await
            .expect("evaluated"),
        "harness page"
    );
    assert_eq!(
        page.evaluate("Promise.resolve(20 + 22)")
            .await
            .expect("awaited"),
        42
    );
    let frames = page
        .wait_for(
            "window.frames_seen >= 5 && window.frames_seen",
            Duration::from_secs(20),
        )
        .await;
    assert!(frames.expect("frames counted").as_u64() >= Some(5));
    browser.close().await.expect("closed");
}

#[tokio::test]
async fn the_fake_camera_and_microphone_are_granted() {
    let Some(chromium) = peer(Chromium::locate()) else {
        return;
    };
    let server = page_server().await;
    let browser = chromium.launch().await.expect("launched");
    let page = browser.new_page().await.expect("page");
    page.goto(&server.url("/")).await.expect("loaded");
    let tracks = page
        .evaluate(
            "navigator.mediaDevices.getUserMedia({ video: true, audio: true })
               .then(stream => stream.getTracks().map(track => `${track.kind}:${track.readyState}`).sort())",
        )
        .await
        .expect("media granted");
    assert_eq!(tracks, json!(["audio:live", "video:live"]));
}

#[tokio::test]
async fn pages_do_not_share_cookies() {
    let Some(chromium) = peer(Chromium::locate()) else {
        return;
    };
    let server = page_server().await;
    let browser = chromium.launch().await.expect("launched");
    let (first, second) = (
        browser.new_page().await.expect("page"),
        browser.new_page().await.expect("page"),
    );
    first.goto(&server.url("/")).await.expect("loaded");
    second.goto(&server.url("/")).await.expect("loaded");
    first
        .evaluate("document.cookie = 'client=first'")
        .await
        .expect("set");
    assert_eq!(
        first.evaluate("document.cookie").await.expect("read"),
        "client=first"
    );
    assert_eq!(second.evaluate("document.cookie").await.expect("read"), "");
}

#[tokio::test]
async fn a_failed_wait_saves_a_screenshot() {
    let Some(chromium) = peer(Chromium::locate()) else {
        return;
    };
    let server = page_server().await;
    let browser = chromium.launch().await.expect("launched");
    let page = browser.new_page().await.expect("page");
    page.goto(&server.url("/")).await.expect("loaded");
    match page
        .wait_for("window.never_set === true", Duration::from_millis(300))
        .await
    {
        Err(HarnessError::Browser {
            message,
            screenshot,
        }) => {
            assert!(message.contains("Timeout"), "{message}");
            let png = std::fs::read(&screenshot)
                .unwrap_or_else(|e| panic!("screenshot {screenshot}: {e}"));
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            std::fs::remove_file(&screenshot).expect("removed");
        }
        other => panic!("expected a browser failure with a screenshot, got {other:?}"),
    }
    let thrown = page
        .evaluate("(() => { throw new Error('boom') })()")
        .await
        .expect_err("must fail");
    assert!(thrown.to_string().contains("boom"), "{thrown}");
}
