//! media-ingest's in-process HLS packaging, judged by ffprobe, ffmpeg's decoder and m3u8-rs.

mod ingest_support;

use harness::{Ffmpeg, TestSignal, peer};
use ingest_support::{KEY, Published, config, expect_event, good_keys, publish, start};
use media_ingest::{HlsConfig, HlsOutput, IngestEvent, hls::SegmentProgress, package_hls};
use std::{path::Path, time::Duration};

fn playlist_seconds(path: &Path) -> (m3u8_rs::MediaPlaylist, f64) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let playlist = m3u8_rs::parse_media_playlist_res(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    let seconds = playlist
        .segments
        .iter()
        .map(|s| f64::from(s.duration))
        .sum();
    (playlist, seconds)
}

#[tokio::test]
async fn a_published_stream_becomes_valid_live_vod_and_master_playlists() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut output = HlsOutput::new(dir.path().join("stream-1"));
    let (progress, mut segments_written) = SegmentProgress::new();
    output.progress = Some(progress);
    let mut hls = HlsConfig::default();
    hls.live_window = 3;

    let signal = TestSignal::lasting(Duration::from_secs(7));
    let publisher = ffmpeg
        .publish(&format!("rtmp://{}/live/{KEY}", server.addr), &signal)
        .expect("publishing");
    let accepted = expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PostPublish { .. })
    })
    .await;
    let IngestEvent::PostPublish { stream, .. } = accepted else {
        unreachable!()
    };
    let subscription = server.handle.subscribe(&stream).expect("live");
    let packaging = tokio::spawn(async move { package_hls(subscription, output, &hls).await });
    // The first segment is announced once the live playlist that lists it can be read.
    segments_written
        .wait_for(|n| *n >= 1)
        .await
        .expect("a segment");
    let out = dir.path().join("stream-1");
    let (first, _) = playlist_seconds(&out.join("live.m3u8"));
    assert!(!first.segments.is_empty());
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
    let report = packaging.await.expect("joined").expect("packaged");
    assert_eq!(*segments_written.borrow(), report.segments);

    assert_eq!(report.skipped_frames, 0);
    assert!(report.segments >= 3, "{report:?}");
    let published = signal.duration.as_secs_f64();
    let packaged = report.duration.as_secs_f64();
    assert!(
        (packaged - published).abs() <= published * 0.05,
        "packaged {packaged} s of {published} s"
    );

    // The live playlist: a 3-segment window, closed at the end; older segments stay for the VOD.
    let (live, _) = playlist_seconds(&out.join("live.m3u8"));
    assert_eq!(live.segments.len(), 3);
    assert!(live.end_list);
    assert_eq!(live.media_sequence, report.segments - 3);
    let live_probe = ffmpeg
        .probe(&out.join("live.m3u8").display().to_string())
        .await
        .expect("live playlist probed");
    assert_eq!(live_probe.format_name, "hls");
    assert_eq!(
        live_probe.video().map(|v| v.codec_name.as_str()),
        Some("h264")
    );
    assert_eq!(
        live_probe.audio().map(|a| a.codec_name.as_str()),
        Some("aac")
    );

    // The VOD playlist: every segment, VOD type, ENDLIST, durations adding up.
    let (vod, vod_seconds) = playlist_seconds(&out.join("vod.m3u8"));
    assert_eq!(vod.segments.len() as u64, report.segments);
    assert!(vod.end_list);
    assert_eq!(vod.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
    assert!(
        (vod_seconds - published).abs() <= published * 0.05,
        "VOD lists {vod_seconds} s"
    );
    for segment in &vod.segments {
        let probe = ffmpeg
            .probe(&out.join(&segment.uri).display().to_string())
            .await
            .expect("segment probed");
        assert_eq!(probe.format_name, "mpegts");
        assert_eq!(
            probe.video().map(|v| v.codec_name.as_str()),
            Some("h264"),
            "{}",
            segment.uri
        );
        assert_eq!(
            probe.audio().map(|a| a.codec_name.as_str()),
            Some("aac"),
            "{}",
            segment.uri
        );
    }

    // ffprobe reads the whole VOD as HLS; ffmpeg decodes every frame of it without an error.
    let vod_path = out.join("vod.m3u8").display().to_string();
    let probe = ffmpeg.probe(&vod_path).await.expect("VOD probed");
    assert_eq!(probe.format_name, "hls");
    assert_eq!(
        probe.video().map(|v| (v.width, v.height)),
        Some((Some(640), Some(360)))
    );
    let probed = probe.duration.expect("a duration").as_secs_f64();
    assert!(
        (probed - published).abs() <= published * 0.05,
        "ffprobe says {probed} s"
    );
    let args = ["-v", "error", "-i", &vod_path, "-f", "null", "-"]
        .map(String::from)
        .to_vec();
    let mut decode = ffmpeg.start(args).expect("decoding");
    assert!(
        decode
            .wait(Duration::from_secs(60))
            .await
            .expect("decoded")
            .success()
    );
    assert_eq!(
        decode.output().trim(),
        "",
        "ffmpeg reported decoding errors"
    );

    // The master playlist names the rendition.
    let master = std::fs::read(out.join("master.m3u8")).expect("master written");
    let master = m3u8_rs::parse_master_playlist_res(&master).expect("valid master");
    let variant = &master.variants[0];
    assert_eq!(variant.uri, "live.m3u8");
    assert!(
        variant
            .codecs
            .as_deref()
            .is_some_and(|c| c.starts_with("avc1.") && c.ends_with(",mp4a.40.2")),
        "{variant:?}"
    );
    assert_eq!(
        variant.resolution.map(|r| (r.width, r.height)),
        Some((640, 360))
    );
    assert!(variant.bandwidth > 100_000, "{variant:?}");

    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("listed")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn without_a_recording_old_segments_are_deleted() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut output = HlsOutput::new(dir.path());
    output.vod_playlist = None;
    let mut hls = HlsConfig::default();
    hls.live_window = 3;
    hls.target_segment_duration = Duration::from_secs(1);

    let Published {
        publisher, stream, ..
    } = publish(&ffmpeg, &mut server, 6).await;
    let subscription = server.handle.subscribe(&stream).expect("live");
    let packaging = tokio::spawn(async move { package_hls(subscription, output, &hls).await });
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
    let report = packaging.await.expect("joined").expect("packaged");
    assert!(report.segments >= 5, "{report:?}");

    let mut segments: Vec<String> = std::fs::read_dir(dir.path())
        .expect("listed")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".ts"))
        .collect();
    segments.sort();
    let (live, _) = playlist_seconds(&dir.path().join("live.m3u8"));
    let mut listed: Vec<String> = live.segments.iter().map(|s| s.uri.clone()).collect();
    listed.sort();
    assert_eq!(segments, listed, "only the live window's segments remain");
    assert!(!dir.path().join("vod.m3u8").exists());
}

#[tokio::test]
async fn every_accepted_stream_is_packaged_and_a_refused_one_gets_no_file() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let root = tempfile::tempdir().expect("temp dir");
    let base = root.path().to_owned();
    let mut finished = server
        .handle
        .package_every_stream(HlsConfig::default(), move |_, _, session| {
            Some(HlsOutput::new(base.join(format!("session-{session}"))))
        });

    let refused = ffmpeg.publish(
        &format!("rtmp://{}/live/wrong-key", server.addr),
        &TestSignal::lasting(Duration::from_secs(3)),
    );
    assert!(
        !refused
            .expect("started")
            .wait(Duration::from_secs(30))
            .await
            .expect("ended")
            .success()
    );
    expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PublishRefused { .. })
    })
    .await;

    let url = format!("rtmp://{}/live/{KEY}", server.addr);
    let publisher = ffmpeg
        .publish(&url, &TestSignal::lasting(Duration::from_secs(3)))
        .expect("publishing");
    let accepted = expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PostPublish { .. })
    })
    .await;
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");

    let done = tokio::time::timeout(Duration::from_secs(30), finished.recv())
        .await
        .expect("in time")
        .expect("a report");
    assert_eq!(done.session, accepted.session());
    let report = done.result.expect("packaged");
    assert!(
        report.segments >= 1 && report.skipped_frames == 0,
        "{report:?}"
    );

    let dirs: Vec<String> = std::fs::read_dir(root.path())
        .expect("listed")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        dirs,
        [format!("session-{}", accepted.session())],
        "only the accepted stream has files"
    );
    let (vod, _) = playlist_seconds(&done.output.dir.join("vod.m3u8"));
    assert!(vod.end_list);
}
