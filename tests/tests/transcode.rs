//! media-ingest's ffmpeg jobs (renditions and previews) against the real ffmpeg.

mod ingest_support;

use harness::{Ffmpeg, peer};
use ingest_support::{Published, config, good_keys, publish, start};
use media_ingest::{
    FfmpegConfig, HlsConfig, HlsOutput, Preview, Rendition, make_previews, package_rendition,
};
use std::time::Duration;

#[tokio::test]
async fn a_rendition_is_made_by_ffmpeg_and_packaged_like_the_original() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let Published {
        publisher, stream, ..
    } = publish(&ffmpeg, &mut server, 6).await;
    let source = server.handle.subscribe(&stream).expect("live");
    let rendition = Rendition::Scaled {
        width: 320,
        height: 180,
        fps: 25,
        kbps: Some(400),
    };
    let output = HlsOutput::new(dir.path().join("320x180"));
    let job = tokio::spawn(async move {
        package_rendition(
            source,
            rendition,
            output,
            &HlsConfig::default(),
            &FfmpegConfig::default(),
        )
        .await
    });
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
    let report = job.await.expect("joined").expect("packaged");
    assert!(
        report.segments >= 2 && report.skipped_frames == 0,
        "{report:?}"
    );

    let vod = dir.path().join("320x180/vod.m3u8").display().to_string();
    let probe = ffmpeg.probe(&vod).await.expect("probed");
    assert_eq!(
        probe
            .video()
            .map(|v| (v.codec_name.as_str(), v.width, v.height)),
        Some(("h264", Some(320), Some(180)))
    );
    assert_eq!(probe.audio().map(|a| a.codec_name.as_str()), Some("aac"));
    let seconds = probe.duration.expect("a duration").as_secs_f64();
    assert!(
        (seconds - 6.0).abs() <= 0.6,
        "the rendition lasts {seconds} s of 6 s"
    );
    let master =
        std::fs::read_to_string(dir.path().join("320x180/master.m3u8")).expect("a master playlist");
    assert!(master.contains("RESOLUTION=320x180"), "{master}");
}

#[tokio::test]
async fn previews_are_written_with_an_index() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let Published {
        publisher, stream, ..
    } = publish(&ffmpeg, &mut server, 5).await;
    let source = server.handle.subscribe(&stream).expect("live");
    let preview = Preview {
        width: 320,
        height: 180,
        interval: Duration::from_secs(1),
    };
    let previews = dir.path().join("previews");
    let target = previews.clone();
    let job = tokio::spawn(async move {
        make_previews(source, preview, target, &FfmpegConfig::default()).await
    });
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
    let report = job.await.expect("joined").expect("previews made");
    assert!(
        (4..=6).contains(&report.images),
        "{report:?} for 5 s at one a second"
    );

    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(previews.join("index.json")).expect("an index"))
            .expect("JSON");
    assert_eq!(
        index["images"].as_array().map(Vec::len),
        Some(report.images as usize)
    );
    assert_eq!(
        (index["width"].as_u64(), index["height"].as_u64()),
        (Some(320), Some(180))
    );
    for image in ["0.jpg", "latest.jpg"] {
        let probe = ffmpeg
            .probe(&previews.join(image).display().to_string())
            .await
            .expect("an image");
        assert_eq!(
            probe
                .video()
                .map(|v| (v.codec_name.as_str(), v.width, v.height)),
            Some(("mjpeg", Some(320), Some(180)))
        );
    }
}

#[tokio::test]
async fn ffmpeg_killed_mid_stream_is_restarted_and_the_job_goes_on() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // The first ffmpeg is killed after 1.5 s; the next ones run normally.
    let killed_once = wrapper(dir.path(), "ffmpeg-killed-once", KILLED_ONCE_AFTER_1_5_S);
    let marker = dir.path().join("ffmpeg-killed-once.marker");
    let mut ffmpeg_config = FfmpegConfig::default();
    ffmpeg_config.program = killed_once;
    ffmpeg_config.restart_backoff = Duration::from_millis(100);

    let Published {
        publisher, stream, ..
    } = publish(&ffmpeg, &mut server, 6).await;
    let source = server.handle.subscribe(&stream).expect("live");
    let preview = Preview {
        width: 160,
        height: 90,
        interval: Duration::from_secs(1),
    };
    let target = dir.path().join("previews");
    let job =
        tokio::spawn(async move { make_previews(source, preview, target, &ffmpeg_config).await });
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
    let report = job.await.expect("joined").expect("previews made");
    assert_eq!(report.restarts, 1, "{report:?}");
    assert!(marker.exists());
    // Images kept coming after the restart (the first run lived 1.5 s of 6).
    assert!(report.images >= 4, "{report:?}");
}

#[tokio::test]
async fn a_missing_ffmpeg_is_a_clear_error() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let Published {
        publisher, stream, ..
    } = publish(&ffmpeg, &mut server, 2).await;
    let source = server.handle.subscribe(&stream).expect("live");
    let mut missing = FfmpegConfig::default();
    missing.program = dir.path().join("no-such-ffmpeg");
    let preview = Preview {
        width: 160,
        height: 90,
        interval: Duration::from_secs(1),
    };
    let error = make_previews(source, preview, dir.path().join("p"), &missing)
        .await
        .expect_err("no ffmpeg");
    assert!(
        error.to_string().contains("cannot start") && error.to_string().contains("no-such-ffmpeg"),
        "{error}"
    );
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
}

/// The first run is killed after 1.5 s (marked by `{marker}`); later runs are ffmpeg itself.
const KILLED_ONCE_AFTER_1_5_S: &str = "if [ ! -e '{marker}' ]; then touch '{marker}'; exec timeout -s KILL 1.5 ffmpeg \"$@\"; fi\nexec ffmpeg \"$@\"";

/// A wrapper around ffmpeg, written into `dir`, running `script` (with `"$@"` for ffmpeg's
/// arguments); `{marker}` in it names a file of `dir`.
fn wrapper(dir: &std::path::Path, name: &str, script: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let marker = dir.join(format!("{name}.marker"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n{}\n",
            script.replace("{marker}", &marker.display().to_string())
        ),
    )
    .expect("written");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("executable");
    path
}

#[tokio::test]
async fn a_rendition_survives_its_ffmpeg_being_killed() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut killed_once = FfmpegConfig::default();
    killed_once.program = wrapper(dir.path(), "ffmpeg-killed-once", KILLED_ONCE_AFTER_1_5_S);
    killed_once.restart_backoff = Duration::from_millis(100);

    let Published {
        publisher, stream, ..
    } = publish(&ffmpeg, &mut server, 8).await;
    let source = server.handle.subscribe(&stream).expect("live");
    let rendition = Rendition::Scaled {
        width: 320,
        height: 180,
        fps: 25,
        kbps: None,
    };
    let output = HlsOutput::new(dir.path().join("320x180"));
    let job = tokio::spawn(async move {
        package_rendition(
            source,
            rendition,
            output,
            &HlsConfig::default(),
            &killed_once,
        )
        .await
    });
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
    let report = job.await.expect("joined").expect("packaged");
    // Segments kept coming after the restart at 1.5 s of 8.
    assert!(report.duration >= Duration::from_secs(5), "{report:?}");
    let probe = ffmpeg
        .probe(&dir.path().join("320x180/vod.m3u8").display().to_string())
        .await
        .expect("probed");
    assert_eq!(
        probe.video().map(|v| (v.width, v.height)),
        Some((Some(320), Some(180)))
    );
}

#[tokio::test]
async fn an_ffmpeg_that_hangs_after_the_stream_is_killed_after_the_grace() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let mut server = start(config(|_| {}), good_keys()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // ffmpeg finishes, then the wrapper holds stdout open forever.
    let mut hangs = FfmpegConfig::default();
    hangs.program = wrapper(
        dir.path(),
        "ffmpeg-then-hang",
        "ffmpeg \"$@\"\nexec sleep 600",
    );
    hangs.stop_grace = Duration::from_millis(500);

    let Published {
        publisher, stream, ..
    } = publish(&ffmpeg, &mut server, 3).await;
    let source = server.handle.subscribe(&stream).expect("live");
    let preview = Preview {
        width: 160,
        height: 90,
        interval: Duration::from_secs(1),
    };
    let target = dir.path().join("previews");
    let job = tokio::spawn(async move { make_previews(source, preview, target, &hangs).await });
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
    let report = tokio::time::timeout(Duration::from_secs(30), job)
        .await
        .expect("the job ended")
        .expect("joined")
        .expect("previews");
    assert!(report.images >= 2, "{report:?}");
}
