//! The HLS encoder: registers with the coordinator, and for each `ENCODE-START` pulls the
//! stream from its streaming server, packages it into HLS (the original by in-process remux,
//! other resolutions and preview images through ffmpeg), keeps a VOD when asked, and reports
//! `STREAM-AVAILABLE` for each playlist once it can be read and `STREAM-CLOSED` at the end.
//!
//! Files follow the original's layout under the root: `hls/<channel>/<stream>/<resolution>/`
//! with `live.m3u8`, `N.ts` and, recorded, `vod-0.m3u8`; previews in
//! `img-preview/<channel>/<stream>/<WxH-SEC>/` with `index.json` and `N.jpg`.

use super::{
    jobs::{Job, JobReport},
    uplink::{Uplink, UplinkEvent},
};
use crate::proto::{ControlMessage, valid_id};
use media_ingest::{FfmpegConfig, HlsConfig, PublishOptions, PullConfig};
use std::{collections::HashMap, path::PathBuf, time::Duration};
use tokio::sync::{mpsc, oneshot, watch};

/// The encoder's settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EncoderConfig {
    /// Where `hls/` and `img-preview/` go.
    pub root: PathBuf,
    /// Streams taken at once, as `REGISTER` says; 0 or negative is unlimited. Default 4.
    pub capacity: i64,
    /// Segment duration and live window.
    pub hls: HlsConfig,
    /// ffmpeg, for scaled renditions and previews.
    pub ffmpeg: FfmpegConfig,
    /// Pulling the source stream.
    pub pull: PullConfig,
    /// How long to keep trying to pull a stream that is not yet playable (its publisher is
    /// accepted at the same moment the encoder is told to start). Default 10 s.
    pub source_wait: Duration,
    /// Longest channel or stream id accepted (they become directory names). Default 128.
    pub id_max_length: usize,
}

impl EncoderConfig {
    /// The defaults, writing under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            capacity: 4,
            hls: HlsConfig::default(),
            ffmpeg: FfmpegConfig::default(),
            pull: PullConfig::default(),
            source_wait: Duration::from_secs(10),
            id_max_length: 128,
        }
    }
}

/// One `ENCODE-START`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartSpec {
    pub(crate) channel: String,
    pub(crate) stream_id: String,
    pub(crate) source_uri: String,
    pub(crate) options: PublishOptions,
}

fn start_spec(message: &ControlMessage, max: usize) -> Result<StartSpec, String> {
    let field = |name: &str| {
        message
            .header(name)
            .ok_or_else(|| format!("ENCODE-START without {name}"))
    };
    let channel = field("Stream-Channel")?;
    let stream_id = field("Stream-ID")?;
    // Both become directory names: nothing but [A-Za-z0-9_-].
    if !valid_id(channel, max) || !valid_id(stream_id, max) {
        return Err("ENCODE-START with an invalid channel or stream id".into());
    }
    let options = PublishOptions::from_webhook_headers(
        message.header("Record"),
        message.header("Previews"),
        message.header("Resolutions"),
    )
    .map_err(|e| e.to_string())?;
    Ok(StartSpec {
        channel: channel.to_owned(),
        stream_id: stream_id.to_owned(),
        source_uri: field("Stream-Source-URI")?.to_owned(),
        options,
    })
}

/// An HLS encoder on its coordinator link.
pub struct Encoder {
    config: EncoderConfig,
    uplink: Uplink,
    events: mpsc::Receiver<UplinkEvent>,
    ready: watch::Sender<bool>,
}

impl Encoder {
    /// An encoder taking its orders from `events` and answering on `uplink`. Index files are
    /// reported as absolute paths (the seed's "full path in the shared file system").
    pub fn new(
        mut config: EncoderConfig,
        uplink: Uplink,
        events: mpsc::Receiver<UplinkEvent>,
    ) -> Self {
        if let Ok(absolute) = std::path::absolute(&config.root) {
            config.root = absolute;
        }
        Self {
            config,
            uplink,
            events,
            ready: watch::channel(false).0,
        }
    }

    /// True while the encoder is registered (its `REGISTER` sent on an open link).
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let Self {
            config,
            uplink,
            events,
            ready,
        } = self;
        run_encoder(config, uplink, events, ready, shutdown).await;
    }
}

async fn run_encoder(
    config: EncoderConfig,
    uplink: Uplink,
    mut events: mpsc::Receiver<UplinkEvent>,
    ready: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (reports_tx, mut reports) = mpsc::channel::<JobReport>(256);
    let mut jobs: HashMap<String, oneshot::Sender<()>> = HashMap::new();
    let send = |message: ControlMessage| {
        if uplink.send(message).is_err() {
            tracing::warn!("a report to the coordinator was lost: the link is down");
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            event = events.recv() => match event {
                Some(UplinkEvent::Connected) => {
                    let register = ControlMessage::new("REGISTER").with("Capacity", config.capacity);
                    ready.send_replace(uplink.send(register).is_ok());
                }
                Some(UplinkEvent::Disconnected(_)) => {
                    ready.send_replace(false);
                    // The coordinator has closed these streams already; stop working on them.
                    jobs.clear();
                }
                Some(UplinkEvent::Message(message)) => match message.method() {
                    "ENCODE-START" => match start_spec(&message, config.id_max_length) {
                        Ok(spec) => {
                            let (stop, stopped) = oneshot::channel();
                            tracing::info!(channel = %spec.channel, stream_id = %spec.stream_id, "encoding");
                            jobs.insert(spec.stream_id.clone(), stop);
                            let job = Job { spec, config: config.clone(), reports: reports_tx.clone() };
                            tokio::spawn(job.run(stopped));
                        }
                        Err(error) => tracing::warn!(%error, "ENCODE-START refused"),
                    },
                    "ENCODE-STOP" => {
                        if let Some(stream_id) = message.header("Stream-ID") {
                            // Dropping the stop sender ends the job's pull.
                            jobs.remove(stream_id);
                        }
                    }
                    "ERROR" => tracing::warn!(
                        code = message.header("Error-Code"),
                        detail = message.header("Error-Message"),
                        "the coordinator refused a message"
                    ),
                    other => tracing::debug!(method = other, "ignored coordinator message"),
                },
                None => return,
            },
            Some(report) = reports.recv() => match report {
                JobReport::Available { channel, stream_id, stream_type, resolution, index_file } => {
                    send(ControlMessage::new("STREAM-AVAILABLE")
                        .with("Stream-Channel", channel)
                        .with("Stream-ID", stream_id)
                        .with("Stream-Type", stream_type)
                        .with("Resolution", resolution)
                        .with("Index-file", index_file.display())
                        .with("Start-Time", crate::server::now_ms()));
                }
                JobReport::Closed { channel, stream_id } => {
                    jobs.remove(&stream_id);
                    send(ControlMessage::new("STREAM-CLOSED")
                        .with("Stream-Channel", channel)
                        .with("Stream-ID", stream_id));
                }
            },
        }
    }
}

#[cfg(test)]
mod tests_encoder {
    use super::*;
    use media_ingest::Rendition;

    #[test]
    fn encode_start_is_checked_before_anything_touches_the_disk() {
        let message = |channel: &str, id: &str| {
            ControlMessage::new("ENCODE-START")
                .with("Stream-Channel", channel)
                .with("Stream-ID", id)
                .with("Stream-Source-Type", "RTMP")
                .with("Stream-Source-URI", "rtmp://10.0.0.1:1935/ch/key")
                .with("Resolutions", "640x360-30~800,ORIGINAL")
                .with("Record", "True")
                .with("Previews", "False")
        };
        let spec = start_spec(&message("ch", "abc123"), 128).expect("valid");
        assert!(spec.options.record);
        assert_eq!(spec.options.previews, None);
        assert_eq!(spec.options.renditions[1], Rendition::Original);
        assert!(start_spec(&message("../ch", "abc"), 128).is_err());
        assert!(start_spec(&message("ch", "a/b"), 128).is_err());
        assert!(start_spec(&ControlMessage::new("ENCODE-START"), 128).is_err());
    }
}
