//! The whole coordinator chain with real media: ffmpeg publishes to `rtmp-server`, the
//! coordinator asks the application and assigns `hls-encoder`, which writes HLS that ffprobe
//! reads, and the application hears about it through its callbacks.

mod coordinator_support;

use coordinator_support::{
    Application, command, coordinator, hls_encoder, rtmp_server, start, start_peer,
};
use harness::{Ffmpeg, TestSignal, peer};
use std::{path::Path, time::Duration};

const GRACE: Duration = Duration::from_secs(15);

fn media_playlist(path: &Path) -> m3u8_rs::MediaPlaylist {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match m3u8_rs::parse_playlist_res(&bytes) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(playlist)) => playlist,
        other => panic!("{}: not a media playlist: {other:?}", path.display()),
    }
}

#[tokio::test]
async fn ffmpeg_publishes_through_the_coordinator_and_hls_comes_out() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut app = Application::start().await;
    app.answer_verifications(200, &[("x-record", "true")]);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("shared");
    let (coordinator, addr) = start(coordinator(&app, &dir.path().join("c.sqlite3"))).await;
    let encoder = start_peer(hls_encoder(addr, &root, 2), &["ops"]).await;
    let server = start_peer(rtmp_server(addr), &["rtmp", "ops"]).await;
    let rtmp = server.addr("rtmp").expect("rtmp announced");

    let signal = TestSignal::lasting(Duration::from_secs(6));
    let publisher = ffmpeg
        .publish(&format!("rtmp://{rtmp}/my-channel/secret_key"), &signal)
        .expect("publishing");

    let asked = app.next_verification().await;
    assert_eq!(asked["x-streaming-channel"], "my-channel");
    assert_eq!(asked["x-streaming-key"], "secret_key");
    assert_eq!(asked["x-user-ip"], "127.0.0.1");

    let live = app.next_event().await;
    assert_eq!(live["x-event-type"], "stream-available", "{live:?}");
    assert_eq!(live["x-stream-type"], "HLS-LIVE");
    let stream_id = live["x-streaming-id"].clone();
    let index = Path::new(&live["x-index-file"]).to_owned();
    assert_eq!(
        index,
        root.join("hls/my-channel")
            .join(&stream_id)
            .join(&live["x-resolution"])
            .join("live.m3u8")
    );
    assert_eq!(live["x-resolution"], "640x360-25", "the source's own size");
    // Announced once readable: a playlist with a segment, which ffprobe plays.
    let probe = ffmpeg
        .probe(&index.display().to_string())
        .await
        .expect("live playlist probed");
    assert_eq!(probe.video().map(|v| v.codec_name.as_str()), Some("h264"));
    assert_eq!(probe.audio().map(|a| a.codec_name.as_str()), Some("aac"));

    let (_, capacity) = command(addr, "GET", "/commands/capacity", &[]).await;
    assert_eq!(capacity["load"], 1);
    assert_eq!(capacity["capacity"], 2);

    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
    // The recording is announced complete, then the stream closed.
    let vod = app.next_event().await;
    assert_eq!(vod["x-stream-type"], "HLS-VOD", "{vod:?}");
    assert_eq!(vod["x-streaming-id"], stream_id);
    let vod_playlist = media_playlist(Path::new(&vod["x-index-file"]));
    assert!(vod_playlist.end_list);
    let recorded: f32 = vod_playlist.segments.iter().map(|s| s.duration).sum();
    let published = signal.duration.as_secs_f32();
    assert!(
        (recorded - published).abs() < 1.0,
        "recorded {recorded} s of {published} s"
    );
    let vod_probe = ffmpeg
        .probe(&vod["x-index-file"])
        .await
        .expect("vod probed");
    assert!(
        vod_probe
            .duration
            .is_some_and(|d| d.as_secs_f32() > published - 1.0)
    );
    let closed = app.next_event().await;
    assert_eq!(closed["x-event-type"], "stream-closed");
    assert_eq!(closed["x-streaming-id"], stream_id);
    assert!(
        media_playlist(&index).end_list,
        "the live playlist is closed too"
    );
    let (_, capacity) = command(addr, "GET", "/commands/capacity", &[]).await;
    assert_eq!(capacity["load"], 0, "the encoder's load is released");

    for process in [server, encoder, coordinator] {
        let status = process.terminate(GRACE).await.expect("stopped");
        assert!(status.success(), "{status}");
    }
}

#[tokio::test]
async fn denied_and_killed_publishers_are_cut_off() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut app = Application::start().await;
    app.answer_verifications(403, &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("shared");
    let (coordinator, addr) = start(coordinator(&app, &dir.path().join("c.sqlite3"))).await;
    let encoder = start_peer(hls_encoder(addr, &root, 0), &["ops"]).await;
    let server = start_peer(rtmp_server(addr), &["rtmp", "ops"]).await;
    let rtmp = server.addr("rtmp").expect("rtmp announced");
    let url = format!("rtmp://{rtmp}/ch/wrong_key");

    // Denied: ffmpeg is refused and nothing is written.
    let mut refused = ffmpeg
        .publish(&url, &TestSignal::lasting(Duration::from_secs(30)))
        .expect("started");
    assert_eq!(
        app.next_verification().await["x-streaming-key"],
        "wrong_key"
    );
    let status = refused.wait(Duration::from_secs(30)).await.expect("ended");
    assert!(!status.success());
    assert!(
        !root.join("hls").exists(),
        "nothing written for a denied key"
    );

    // Accepted, then killed through the commands API: ffmpeg is cut off long before its end.
    app.answer_verifications(200, &[]);
    let mut publisher = ffmpeg
        .publish(&url, &TestSignal::lasting(Duration::from_secs(60)))
        .expect("started");
    app.next_verification().await;
    let live = app.next_event().await;
    assert_eq!(live["x-stream-type"], "HLS-LIVE");
    let (status, body) = command(
        addr,
        "POST",
        "/commands/close",
        &[
            ("x-streaming-channel", "ch"),
            ("x-streaming-id", &live["x-streaming-id"]),
        ],
    )
    .await;
    assert_eq!((status, body["closed"].as_u64()), (200, Some(1)));
    let status = publisher
        .wait(Duration::from_secs(20))
        .await
        .expect("ended");
    assert!(!status.success(), "cut off: {status}");
    let closed = app.next_event().await;
    assert_eq!(closed["x-event-type"], "stream-closed");
    assert_eq!(closed["x-streaming-id"], live["x-streaming-id"]);

    for process in [server, encoder, coordinator] {
        process.terminate(GRACE).await.expect("stopped");
    }
}

#[tokio::test]
async fn renditions_below_the_source_and_previews_are_made_with_ffmpeg() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut app = Application::start().await;
    // The source is 640x360: of the two sizes, 426x240 is the closest, and nothing is below it.
    app.answer_verifications(
        200,
        &[
            ("x-record", "true"),
            ("x-resolutions", "1280x720-30~2500,426x240-25~400,ORIGINAL"),
            ("x-previews", "160x90, 1"),
        ],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("shared");
    let (coordinator, addr) = start(coordinator(&app, &dir.path().join("c.sqlite3"))).await;
    let encoder = start_peer(hls_encoder(addr, &root, 1), &["ops"]).await;
    let server = start_peer(rtmp_server(addr), &["rtmp", "ops"]).await;
    let rtmp = server.addr("rtmp").expect("rtmp announced");
    let publisher = ffmpeg
        .publish(
            &format!("rtmp://{rtmp}/ladder/key"),
            &TestSignal::lasting(Duration::from_secs(5)),
        )
        .expect("publishing");
    app.next_verification().await;
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");

    // Events until the stream closes: (type, resolution) → index file.
    let mut available = std::collections::BTreeMap::new();
    loop {
        let event = app.next_event().await;
        if event["x-event-type"] == "stream-closed" {
            break;
        }
        let key = (
            event["x-stream-type"].clone(),
            event["x-resolution"].clone(),
        );
        available.insert(key, event["x-index-file"].clone());
    }
    let kinds: Vec<(&str, &str)> = available
        .keys()
        .map(|(t, r)| (t.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("HLS-LIVE", "426x240-25"),
            ("HLS-LIVE", "640x360-25"),
            ("HLS-VOD", "426x240-25"),
            ("HLS-VOD", "640x360-25"),
            ("IMG-PREVIEW", "160x90"),
        ],
        "no 1280x720: it is above the source"
    );
    let scaled = &available[&("HLS-VOD".to_owned(), "426x240-25".to_owned())];
    let probe = ffmpeg.probe(scaled).await.expect("scaled VOD probed");
    let video = probe.video().expect("video");
    assert_eq!((video.width, video.height), (Some(426), Some(240)));
    assert!(probe.audio().is_some(), "audio kept");
    let previews = &available[&("IMG-PREVIEW".to_owned(), "160x90".to_owned())];
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(previews).expect("index.json")).expect("JSON");
    let images = index["images"].as_array().expect("images");
    assert!(images.len() >= 2, "{index}");
    let first = Path::new(previews).with_file_name(images[0].as_str().expect("name"));
    let image = ffmpeg
        .probe(&first.display().to_string())
        .await
        .expect("a preview image");
    assert_eq!(image.video().and_then(|v| v.height), Some(90));

    for process in [server, encoder, coordinator] {
        process.terminate(GRACE).await.expect("stopped");
    }
}
