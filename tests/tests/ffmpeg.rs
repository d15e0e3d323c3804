//! The ffmpeg helpers against the real ffmpeg and ffprobe.

use harness::{Ffmpeg, HarnessError, TestSignal, free_port, peer, wait_for_tcp_listener};
use std::time::Duration;

fn assert_close(actual: Duration, expected: Duration, tolerance: f64) {
    let (a, e) = (actual.as_secs_f64(), expected.as_secs_f64());
    assert!(
        (a - e).abs() <= e * tolerance,
        "duration {a:.3} s is not within {:.0} % of {e:.3} s",
        tolerance * 100.0
    );
}

#[tokio::test]
async fn a_generated_signal_has_h264_video_and_aac_audio_of_the_asked_length() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("signal.flv");
    let signal = TestSignal {
        width: 320,
        height: 240,
        ..TestSignal::lasting(Duration::from_secs(2))
    };
    ffmpeg.generate(&signal, &file).await.expect("generated");

    let probe = ffmpeg
        .probe(&file.display().to_string())
        .await
        .expect("probed");
    assert_eq!(probe.format_name, "flv");
    let video = probe.video().expect("a video stream");
    assert_eq!(
        (video.codec_name.as_str(), video.width, video.height),
        ("h264", Some(320), Some(240))
    );
    let audio = probe.audio().expect("an audio stream");
    assert_eq!(
        (audio.codec_name.as_str(), audio.sample_rate, audio.channels),
        ("aac", Some(44100), Some(2))
    );
    assert_close(probe.duration.expect("a duration"), signal.duration, 0.10);
}

#[tokio::test]
async fn an_audio_only_file_has_no_video() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("chunk.aac");
    let signal = TestSignal {
        video: false,
        ..TestSignal::lasting(Duration::from_secs(1))
    };
    ffmpeg.generate(&signal, &file).await.expect("generated");
    let probe = ffmpeg
        .probe(&file.display().to_string())
        .await
        .expect("probed");
    assert!(probe.video().is_none());
    assert_eq!(probe.audio().map(|a| a.codec_name.as_str()), Some("aac"));
}

#[tokio::test]
async fn a_published_signal_arrives_over_rtmp() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let received = dir.path().join("received.flv");
    let port = free_port().expect("a free port");
    let mut receiver = ffmpeg
        .receive_rtmp(port, "live/harness-key", &received)
        .expect("receiver started");
    wait_for_tcp_listener(port, Duration::from_secs(20))
        .await
        .expect("receiver listening");

    let signal = TestSignal::lasting(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let publisher = ffmpeg
        .publish(
            &format!("rtmp://127.0.0.1:{port}/live/harness-key"),
            &signal,
        )
        .expect("publishing");
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");
    // `-re` paces the signal in real time: the run cannot be much shorter than the signal.
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "published in {:?}",
        started.elapsed()
    );
    let status = receiver
        .wait(Duration::from_secs(30))
        .await
        .expect("receiver ended");
    assert!(
        status.success(),
        "receiver: {status}\n{}",
        receiver.output()
    );

    let probe = ffmpeg
        .probe(&received.display().to_string())
        .await
        .expect("probed");
    assert_eq!(probe.video().map(|v| v.codec_name.as_str()), Some("h264"));
    assert_eq!(probe.audio().map(|a| a.codec_name.as_str()), Some("aac"));
    assert_close(probe.duration.expect("a duration"), signal.duration, 0.10);
}

#[tokio::test]
async fn probing_something_that_is_not_media_is_an_error() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("not-media.ts");
    std::fs::write(&file, b"this is not a transport stream").expect("written");
    match ffmpeg.probe(&file.display().to_string()).await {
        Err(HarnessError::ProcessFailed { output, .. }) => assert!(!output.is_empty()),
        other => panic!("expected ffprobe to fail, got {other:?}"),
    }
}
