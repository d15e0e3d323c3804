//! Camus's browser client in headless Chromium with fake camera and microphone: two pages
//! join one room through the server and each sees the other's video playing, and a text
//! message typed in one shows in the other.

mod camus_support;

use camus_support::camus;
use harness::{Chromium, Page, peer};
use serde_json::Value;
use std::time::Duration;

/// Longest any one step may take on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(60);

/// Waits until a peer's video plays: `frames` frames presented on its element (each one an
/// event, `requestVideoFrameCallback`), and returns the inbound video RTP stream's bytes.
const PLAYING: &str = r"(async (frames) => {
  const video = document.querySelector('video[data-peer]');
  for (let seen = 0; seen < frames; seen += 1) {
    await new Promise((presented) => video.requestVideoFrameCallback(presented));
  }
  const [peer] = window.camus.peers.values();
  const stats = await peer.pc.getStats();
  let bytes = 0;
  stats.forEach((report) => {
    if (report.type === 'inbound-rtp' && report.kind === 'video') bytes += report.bytesReceived;
  });
  return { bytes, width: video.videoWidth, height: video.videoHeight };
})";

/// `[its id, its peer's id, whether it is the polite one]`.
async fn ids(page: &Page<'_>) -> Value {
    page.evaluate(
        "[window.camus.id, [...window.camus.peers.keys()][0], \
         [...window.camus.peers.values()][0].polite]",
    )
    .await
    .expect("evaluated")
}

async fn playing(page: &Page<'_>, frames: u32) -> Value {
    page.evaluate(&format!("{PLAYING}({frames})"))
        .await
        .expect("the peer's video plays")
}

#[tokio::test]
async fn two_pages_in_one_room_see_each_others_video_and_chat() {
    let Some(chromium) = peer(Chromium::locate()) else {
        return;
    };
    let camus = camus(|_| {}).await;
    let room = camus.create(&[("room_name", "Video call")]).await;
    let url = format!("{}/room/{room}", camus.base);
    let browser = chromium.launch().await.expect("Chromium started");
    let bill = browser.new_page().await.expect("a page");
    let ted = browser.new_page().await.expect("a page");
    assert_eq!(bill.goto(&url).await.expect("loaded"), Some(200));
    bill.wait_for("window.camus && window.camus.id", STEP)
        .await
        .expect("Bill learnt his id");
    assert_eq!(ted.goto(&url).await.expect("loaded"), Some(200));

    for page in [&bill, &ted] {
        page.wait_for(
            "document.querySelector('video[data-peer]')?.srcObject",
            STEP,
        )
        .await
        .expect("a peer's stream arrived");
        let first = playing(page, 3).await;
        let later = playing(page, 10).await;
        let bytes = |v: &Value| v["bytes"].as_u64().expect("a number");
        assert!(bytes(&first) > 0, "{first}");
        assert!(bytes(&later) > bytes(&first), "{first} then {later}");
        assert!(later["width"].as_u64().expect("a width") > 0, "{later}");
    }
    // Each page knows the other by the id the server gave it, politeness by id order.
    let (b, t) = (ids(&bill).await, ids(&ted).await);
    assert_eq!((&b[0], &b[1]), (&t[1], &t[0]), "{b} {t}");
    assert_ne!(b[2], t[2], "exactly one polite peer: {b} {t}");

    bill.evaluate(
        "document.getElementById('text').value = 'hello from Bill'; \
         document.getElementById('say').requestSubmit(); true",
    )
    .await
    .expect("typed");
    ted.wait_for(
        "document.getElementById('chat').textContent.includes('hello from Bill')",
        STEP,
    )
    .await
    .expect("Ted read it");
    browser.close().await.expect("closed");
}
