//! ffmpeg as a real RTMP publisher and media generator, ffprobe as the judge of what we produce.

use crate::{
    child::{OutputTail, read_lines},
    error::{HarnessError, PeerMissing, Result},
    peers::find_program,
};
use serde::Deserialize;
use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};
use tokio::process::{Child, Command};

/// ffmpeg and ffprobe, found on this machine.
#[derive(Debug, Clone)]
pub struct Ffmpeg {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
}

/// A generated test signal: the `testsrc2` picture with a running counter and a 440 Hz tone.
#[derive(Debug, Clone)]
pub struct TestSignal {
    /// How long the signal lasts.
    pub duration: Duration,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Seconds between keyframes (H.264 GOP length).
    pub keyframe_interval_secs: u32,
    /// Whether to include the video stream (H.264).
    pub video: bool,
    /// Whether to include the audio stream (AAC-LC, 44.1 kHz stereo, 128 kbps).
    pub audio: bool,
}

impl Default for TestSignal {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(5),
            width: 640,
            height: 360,
            fps: 25,
            keyframe_interval_secs: 1,
            video: true,
            audio: true,
        }
    }
}

impl TestSignal {
    /// The default signal, lasting `duration`.
    pub fn lasting(duration: Duration) -> Self {
        Self {
            duration,
            ..Self::default()
        }
    }

    fn input_args(&self, realtime: bool) -> Vec<String> {
        let mut args = Vec::new();
        let seconds = format!("{:.3}", self.duration.as_secs_f64());
        if self.video {
            if realtime {
                args.push("-re".into());
            }
            args.extend(["-f".into(), "lavfi".into(), "-i".into()]);
            args.push(format!(
                "testsrc2=size={}x{}:rate={}:duration={seconds}",
                self.width, self.height, self.fps
            ));
        }
        if self.audio {
            if realtime {
                args.push("-re".into());
            }
            args.extend(["-f".into(), "lavfi".into(), "-i".into()]);
            args.push(format!(
                "sine=frequency=440:sample_rate=44100:duration={seconds}"
            ));
        }
        args
    }

    fn codec_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.video {
            let gop = (self.fps * self.keyframe_interval_secs.max(1)).to_string();
            args.extend(
                [
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-tune",
                    "zerolatency",
                    "-pix_fmt",
                    "yuv420p",
                    "-g",
                ]
                .map(String::from),
            );
            args.push(gop.clone());
            args.extend([
                "-keyint_min".into(),
                gop,
                "-sc_threshold".into(),
                "0".into(),
            ]);
        }
        if self.audio {
            args.extend(
                ["-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-ac", "2"].map(String::from),
            );
        }
        args.extend(["-t".into(), format!("{:.3}", self.duration.as_secs_f64())]);
        args
    }
}

impl Ffmpeg {
    /// Finds `ffmpeg` and `ffprobe` (on `PATH`, or at `$FFMPEG` and `$FFPROBE`).
    pub fn locate() -> Result<Self> {
        let missing = |what: &str| {
            HarnessError::PeerMissing(PeerMissing {
                peer: "ffmpeg",
                reason: format!("{what} is not on PATH"),
                hint: "scripts/test installs it (apt-get install ffmpeg)",
            })
        };
        let ffmpeg = find_program("ffmpeg", "FFMPEG").ok_or_else(|| missing("ffmpeg"))?;
        let ffprobe = find_program("ffprobe", "FFPROBE").ok_or_else(|| missing("ffprobe"))?;
        Ok(Self { ffmpeg, ffprobe })
    }

    /// Publishes `signal` in real time to `url` (`rtmp://…`, as FLV), as OBS or a camera would.
    /// The returned run ends by itself after `signal.duration`.
    pub fn publish(&self, url: &str, signal: &TestSignal) -> Result<FfmpegRun> {
        let mut args = signal.input_args(true);
        args.extend(signal.codec_args());
        args.extend(["-f".into(), "flv".into(), url.into()]);
        self.start(args)
    }

    /// Writes `signal` to the file `output` as fast as possible; the container follows the file
    /// name (`.flv`, `.mp4`, `.aac`, `.ts` …). Returns when the file is complete.
    pub async fn generate(&self, signal: &TestSignal, output: &Path) -> Result<()> {
        let mut args = signal.input_args(false);
        args.extend(signal.codec_args());
        args.push(output.display().to_string());
        self.start(args)?
            .finish(signal.duration + Duration::from_secs(60))
            .await
    }

    /// Runs ffmpeg as an RTMP server on `127.0.0.1:port` that accepts one publisher at
    /// `rtmp://127.0.0.1:<port>/<path>` and copies what it receives into the FLV file `output`.
    /// Wait for it with [`crate::wait_for_tcp_listener`] before publishing.
    pub fn receive_rtmp(&self, port: u16, path: &str, output: &Path) -> Result<FfmpegRun> {
        let url = format!("rtmp://127.0.0.1:{port}/{}", path.trim_start_matches('/'));
        let args = [
            "-listen",
            "1",
            "-i",
            &url,
            "-c",
            "copy",
            "-f",
            "flv",
            &output.display().to_string(),
        ];
        self.start(args.map(String::from).to_vec())
    }

    /// Plays `url` (an RTMP stream, a playlist …) for `duration` as a player would, copying
    /// what arrives into the FLV file `output`; returns when ffmpeg has finished.
    pub async fn record(&self, url: &str, duration: Duration, output: &Path) -> Result<()> {
        let seconds = format!("{:.3}", duration.as_secs_f64());
        let args = [
            "-i",
            url,
            "-t",
            &seconds,
            "-c",
            "copy",
            "-f",
            "flv",
            &output.display().to_string(),
        ];
        self.start(args.map(String::from).to_vec())?
            .finish(duration + Duration::from_secs(60))
            .await
    }

    /// Runs ffmpeg with `args` (after `-hide_banner -nostdin -y -loglevel warning`).
    pub fn start(&self, args: Vec<String>) -> Result<FfmpegRun> {
        let mut command = Command::new(&self.ffmpeg);
        command
            .args(["-hide_banner", "-nostdin", "-y", "-loglevel", "warning"])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(HarnessError::io("starting ffmpeg"))?;
        let tail = OutputTail::default();
        if let Some(stdout) = child.stdout.take() {
            read_lines(stdout, "ffmpeg".into(), tail.clone(), |_| {});
        }
        if let Some(stderr) = child.stderr.take() {
            read_lines(stderr, "ffmpeg".into(), tail.clone(), |_| {});
        }
        Ok(FfmpegRun { child, tail })
    }

    /// Probes a file or URL with ffprobe: its streams and duration.
    pub async fn probe(&self, target: &str) -> Result<Probe> {
        let output = Command::new(&self.ffprobe)
            .args([
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_format",
                "-show_streams",
                target,
            ])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(60), output)
            .await
            .map_err(|_| HarnessError::Timeout {
                what: format!("ffprobe {target}"),
                after: Duration::from_secs(60),
            })?
            .map_err(HarnessError::io("running ffprobe"))?;
        if !output.status.success() {
            return Err(HarnessError::ProcessFailed {
                program: format!("ffprobe {target}"),
                status: output.status,
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        let raw: RawProbe =
            serde_json::from_slice(&output.stdout).map_err(|error| HarnessError::Protocol {
                peer: "ffprobe",
                detail: error.to_string(),
            })?;
        Ok(raw.into())
    }
}

/// A running ffmpeg; killed if dropped before it ends.
pub struct FfmpegRun {
    child: Child,
    tail: OutputTail,
}

impl FfmpegRun {
    /// Waits up to `timeout` for ffmpeg to end by itself, and fails unless it succeeded.
    pub async fn finish(mut self, timeout: Duration) -> Result<()> {
        let status = self.wait(timeout).await?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::ProcessFailed {
                program: "ffmpeg".into(),
                status,
                output: self.tail.text(),
            })
        }
    }

    /// Waits up to `timeout` for ffmpeg to end, and returns how it ended.
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.map_err(HarnessError::io("waiting for ffmpeg")),
            Err(_) => Err(HarnessError::Timeout {
                what: format!("ffmpeg to finish; last output:\n{}", self.tail.text()),
                after: timeout,
            }),
        }
    }

    /// Asks ffmpeg to stop (SIGTERM, on which it finalises its output) and waits for it.
    pub async fn stop(mut self) -> Result<ExitStatus> {
        if let Some(pid) = self.child.id() {
            crate::process::signal(pid, nix::sys::signal::Signal::SIGTERM)?;
        }
        self.wait(Duration::from_secs(30)).await
    }

    /// The last lines ffmpeg printed.
    pub fn output(&self) -> String {
        self.tail.text()
    }
}

/// What ffprobe found in a file or stream.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The container format(s), as ffprobe names them (`flv`, `hls`, `mpegts`, `mov,mp4,…`).
    pub format_name: String,
    /// The container's duration, when known.
    pub duration: Option<Duration>,
    /// Every stream, in index order.
    pub streams: Vec<ProbeStream>,
}

impl Probe {
    /// The first video stream.
    pub fn video(&self) -> Option<&ProbeStream> {
        self.streams
            .iter()
            .find(|stream| stream.codec_type == "video")
    }

    /// The first audio stream.
    pub fn audio(&self) -> Option<&ProbeStream> {
        self.streams
            .iter()
            .find(|stream| stream.codec_type == "audio")
    }
}

/// One stream of a [`Probe`].
#[derive(Debug, Clone)]
pub struct ProbeStream {
    /// `video`, `audio`, `data` …
    pub codec_type: String,
    /// `h264`, `aac` …
    pub codec_name: String,
    /// Picture width, for video.
    pub width: Option<u32>,
    /// Picture height, for video.
    pub height: Option<u32>,
    /// Sample rate in Hz, for audio.
    pub sample_rate: Option<u32>,
    /// Channel count, for audio.
    pub channels: Option<u32>,
}

#[derive(Deserialize)]
struct RawProbe {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
}

#[derive(Deserialize)]
struct RawStream {
    #[serde(default)]
    codec_type: String,
    #[serde(default)]
    codec_name: String,
    width: Option<u32>,
    height: Option<u32>,
    sample_rate: Option<String>,
    channels: Option<u32>,
}

#[derive(Deserialize)]
struct RawFormat {
    #[serde(default)]
    format_name: String,
    duration: Option<String>,
}

impl From<RawProbe> for Probe {
    fn from(raw: RawProbe) -> Self {
        let (format_name, duration) = match raw.format {
            Some(format) => (
                format.format_name,
                format.duration.as_deref().and_then(parse_seconds),
            ),
            None => (String::new(), None),
        };
        let streams = raw
            .streams
            .into_iter()
            .map(|stream| ProbeStream {
                codec_type: stream.codec_type,
                codec_name: stream.codec_name,
                width: stream.width,
                height: stream.height,
                sample_rate: stream.sample_rate.and_then(|rate| rate.parse().ok()),
                channels: stream.channels,
            })
            .collect();
        Self {
            format_name,
            duration,
            streams,
        }
    }
}

fn parse_seconds(text: &str) -> Option<Duration> {
    text.parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
}

#[cfg(test)]
mod parsing {
    use super::*;

    #[test]
    fn ffprobe_json_becomes_a_probe() {
        let json = r#"{"streams":[
            {"index":0,"codec_type":"video","codec_name":"h264","width":640,"height":360},
            {"index":1,"codec_type":"audio","codec_name":"aac","sample_rate":"44100","channels":2}],
            "format":{"format_name":"flv","duration":"2.040000"}}"#;
        let probe: Probe = serde_json::from_str::<RawProbe>(json)
            .expect("valid")
            .into();
        assert_eq!(probe.format_name, "flv");
        assert_eq!(probe.duration, Some(Duration::from_millis(2040)));
        assert_eq!(probe.video().and_then(|v| v.width), Some(640));
        assert_eq!(probe.audio().and_then(|a| a.sample_rate), Some(44100));
    }

    #[test]
    fn a_live_stream_has_no_duration() {
        let json = r#"{"streams":[],"format":{"format_name":"hls","duration":"N/A"}}"#;
        let probe: Probe = serde_json::from_str::<RawProbe>(json)
            .expect("valid")
            .into();
        assert_eq!(probe.duration, None);
    }
}
