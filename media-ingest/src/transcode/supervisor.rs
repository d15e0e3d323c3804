//! Runs ffmpeg on a live stream: FLV into its stdin, its stdout handed on, its stderr logged;
//! restarts it with a backoff when it dies while the stream lives; stops it cleanly at the end.

use super::flv;
use crate::{Error, media::MediaFrame, streams::Subscription};
use bytes::Bytes;
use std::{path::PathBuf, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, ChildStdout, Command},
    sync::mpsc,
};

/// How ffmpeg is run for renditions and previews.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FfmpegConfig {
    /// The ffmpeg executable. Default `ffmpeg` (on `PATH`).
    pub program: PathBuf,
    /// Restarts allowed after ffmpeg dies while the stream is live. Default 5.
    pub max_restarts: u32,
    /// The wait before the first restart, doubled for each further one (up to 30 s). Default 1 s.
    pub restart_backoff: Duration,
    /// How long ffmpeg may take to finish once the stream has ended. Default 10 s.
    pub stop_grace: Duration,
}

impl Default for FfmpegConfig {
    fn default() -> Self {
        Self {
            program: "ffmpeg".into(),
            max_restarts: 5,
            restart_backoff: Duration::from_secs(1),
            stop_grace: Duration::from_secs(10),
        }
    }
}

/// How a supervised run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Supervised {
    pub(crate) restarts: u32,
}

enum Fed {
    /// The stream ended; stdin was closed so that ffmpeg finishes its outputs.
    StreamEnded,
    /// ffmpeg stopped reading (it died, or closed its input).
    Broken,
}

/// The frames a restarted ffmpeg needs before any other: the decoder configurations.
#[derive(Default)]
struct Headers {
    video: Option<MediaFrame>,
    audio: Option<MediaFrame>,
}

/// What a supervised ffmpeg writes on stdout, as its consumer sees it.
pub(crate) enum Output {
    /// A new ffmpeg process starts here (after a restart): whatever was half-read belongs to the
    /// old one; the new one starts its output afresh.
    Restarted,
    /// The next bytes.
    Bytes(Bytes),
}

/// Feeds `source` to ffmpeg with `output_args` until the stream ends, sending what ffmpeg writes
/// on stdout to `stdout` (when given). `label` names the job in logs.
pub(crate) async fn supervise(
    mut source: Subscription,
    config: &FfmpegConfig,
    label: &str,
    output_args: &[String],
    stdout: Option<mpsc::Sender<Output>>,
) -> Result<Supervised, Error> {
    let mut headers = Headers::default();
    let mut restarts = 0;
    loop {
        let mut child = spawn(config, output_args, stdout.is_some(), label)?;
        if let (true, Some(sender)) = (restarts > 0, &stdout) {
            let _ = sender.send(Output::Restarted).await;
        }
        let stdin = child.stdin.take();
        // Forwarded on a task of its own: a hung ffmpeg that holds stdout open must not keep
        // this loop from killing it.
        let forwarding = match (child.stdout.take(), stdout.clone()) {
            (Some(output), Some(sender)) => Some(tokio::spawn(forward(output, sender))),
            _ => None,
        };
        let fed = {
            let feeding = feed(&mut source, &mut headers, stdin, restarts > 0);
            tokio::select! {
                fed = feeding => fed,
                _ = child.wait() => Fed::Broken,
            }
        };
        let status = match tokio::time::timeout(config.stop_grace, child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                tracing::warn!(job = label, "ffmpeg did not finish in time; killing it");
                let _ = child.kill().await;
                None
            }
        };
        if let Some(forwarding) = forwarding {
            // ffmpeg is gone, so its stdout ends.
            let _ = forwarding.await;
        }
        match fed {
            Fed::StreamEnded => {
                if !status.is_some_and(|s| s.success()) {
                    tracing::warn!(
                        job = label,
                        ?status,
                        "ffmpeg ended unsuccessfully after the stream"
                    );
                }
                return Ok(Supervised { restarts });
            }
            Fed::Broken if restarts < config.max_restarts => {
                restarts += 1;
                metrics::counter!("media_ingest_ffmpeg_restarts_total").increment(1);
                let backoff = config
                    .restart_backoff
                    .saturating_mul(1 << (restarts - 1).min(5))
                    .min(Duration::from_secs(30));
                tracing::error!(
                    job = label,
                    ?status,
                    restarts,
                    ?backoff,
                    "ffmpeg died while the stream is live; restarting"
                );
                tokio::time::sleep(backoff).await;
            }
            Fed::Broken => {
                tracing::error!(
                    job = label,
                    ?status,
                    restarts,
                    "ffmpeg keeps dying; giving up on this job"
                );
                return Err(Error::Ffmpeg(format!(
                    "{label}: ffmpeg died {} times",
                    restarts + 1
                )));
            }
        }
    }
}

async fn forward(mut output: ChildStdout, sender: mpsc::Sender<Output>) {
    let mut buffer = vec![0u8; 64 << 10];
    while let Ok(read) = output.read(&mut buffer).await {
        if read == 0
            || sender
                .send(Output::Bytes(Bytes::copy_from_slice(&buffer[..read])))
                .await
                .is_err()
        {
            return;
        }
    }
}

fn spawn(
    config: &FfmpegConfig,
    output_args: &[String],
    with_stdout: bool,
    label: &str,
) -> Result<Child, Error> {
    let mut child = Command::new(&config.program)
        // -copyts keeps the stream's timestamps, so a restarted ffmpeg continues the timeline.
        .args([
            "-hide_banner",
            "-loglevel",
            "warning",
            "-copyts",
            "-f",
            "flv",
            "-i",
            "pipe:0",
        ])
        .args(output_args)
        .stdin(Stdio::piped())
        .stdout(if with_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| {
            Error::Ffmpeg(format!(
                "cannot start {}: {error}",
                config.program.display()
            ))
        })?;
    if let Some(stderr) = child.stderr.take() {
        let label = label.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(job = %label, "ffmpeg: {line}");
            }
        });
    }
    Ok(child)
}

/// Writes the stream to ffmpeg's stdin as FLV. After a restart, the decoder configurations go
/// first and frames are skipped up to the next keyframe.
async fn feed(
    source: &mut Subscription,
    headers: &mut Headers,
    stdin: Option<ChildStdin>,
    restarted: bool,
) -> Fed {
    let Some(mut stdin) = stdin else {
        return Fed::Broken;
    };
    let mut bytes = flv::header().to_vec();
    for frame in [&headers.video, &headers.audio].into_iter().flatten() {
        flv::write_tag(frame, &mut bytes);
    }
    let mut waiting_for_keyframe = restarted;
    loop {
        if !bytes.is_empty() {
            if stdin.write_all(&bytes).await.is_err() {
                return Fed::Broken;
            }
            bytes.clear();
        }
        let Some(frame) = source.next().await else {
            // Dropping stdin is ffmpeg's end of input: it finishes and flushes its outputs.
            drop(stdin);
            return Fed::StreamEnded;
        };
        if frame.is_sequence_header() {
            match frame.kind {
                crate::MediaKind::Video => headers.video = Some(frame.clone()),
                crate::MediaKind::Audio => headers.audio = Some(frame.clone()),
            }
        } else if waiting_for_keyframe {
            if !frame.is_keyframe() {
                continue;
            }
            waiting_for_keyframe = false;
        }
        flv::write_tag(&frame, &mut bytes);
    }
}
