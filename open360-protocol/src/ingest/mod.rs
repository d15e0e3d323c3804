//! The ingest service (`ingest-api`): media-ingest's RTMP server on 1935, publishers checked
//! with `web-api`, every accepted stream packaged to HLS with a thumbnail, and recorded.
//!
//! - A publisher connects to `rtmp://host/live/<streamKey>`. [`HubKeyVerifier`] asks
//!   `web-api` `checkKeyExists {streamKey}`; only `{exists: true, username}` lets it in. A
//!   refusal, an error, an absent web service or no answer within the verification timeout all
//!   refuse the publisher before any file is written (fail closed).
//! - An accepted stream gets a fresh **stream id** (`<unix seconds>-<10 random characters>`), so
//!   its media lives under `<media_dir>/<username>/<stream id>/`: `master.m3u8`, `live.m3u8`
//!   (2 s segments, a 10-entry window), `vod.m3u8` with every segment, `N.ts`, and
//!   `thumbs/latest.jpg` (height 300, refreshed every 2 s). Paths and URLs carry the username
//!   and the stream id, never the key; a new stream never overwrites an older one.
//! - `web-api` is told, in this order: `setOnline {username, streamId, state: "lurking"}` on
//!   acceptance, `setOnline {…, state: "online"}` once the first segment can be played,
//!   `addVod {username, streamId, startedAtMs, durationMs, segments}` when the stream ends with
//!   something recorded, then `setOnline {…, state: "offline"}`.
//! - The session lifecycle (`preConnect` … `doneConnect`, the seed's order) is logged, and an
//!   embedder sees it on [`IngestService::handle`]`().events()`.
//! - [`media_router`] serves the media directory over HTTP (`GET /media/<username>/<stream
//!   id>/<file>`), for the web page's player.

mod media;
mod verifier;

pub use media::media_router;
pub use verifier::HubKeyVerifier;
pub(crate) use verifier::is_path_name;

use crate::{Error, client::ServiceClient};
use media_ingest::{
    FfmpegConfig, HlsConfig, HlsOutput, IngestConfig, IngestEvent, IngestHandle, IngestServer,
    Preview, StreamName, hls::SegmentProgress, make_thumbnail, package_hls,
};
use serde_json::{Value, json};
use std::{
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::broadcast::error::RecvError;

/// The label the ingest service joins the hub under.
pub const INGEST_LABEL: &str = "ingest-api";

/// The RTMP application publishers use: `rtmp://host/live/<streamKey>`.
pub const INGEST_APP: &str = "live";

/// How the ingest service runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IngestServiceConfig {
    /// The RTMP server's settings and limits (listen address default `0.0.0.0:1935`).
    pub rtmp: IngestConfig,
    /// Where each stream's media goes, as `<username>/<stream id>/`.
    pub media_dir: PathBuf,
    /// HLS segmenting: 2 s segments, a 10-entry live window.
    pub hls: HlsConfig,
    /// The thumbnail: a width of 0 keeps the aspect ratio. Default 0×300 every 2 s; `None` for
    /// none (no ffmpeg needed then).
    pub thumbnail: Option<Preview>,
    /// The ffmpeg that makes thumbnails.
    pub ffmpeg: FfmpegConfig,
}

impl Default for IngestServiceConfig {
    fn default() -> Self {
        let mut hls = HlsConfig::default();
        hls.target_segment_duration = Duration::from_secs(2);
        hls.live_window = 10;
        Self {
            rtmp: IngestConfig::default(),
            media_dir: PathBuf::from("data/open360/media"),
            hls,
            thumbnail: Some(Preview {
                width: 0,
                height: 300,
                interval: Duration::from_secs(2),
            }),
            ffmpeg: FfmpegConfig::default(),
        }
    }
}

/// A bound ingest service, ready to [`run`](IngestService::run).
pub struct IngestService {
    server: IngestServer,
    config: Arc<IngestServiceConfig>,
    hub: ServiceClient,
}

impl IngestService {
    /// Binds the RTMP listener. `hub` is this service's link to the hub (label
    /// [`INGEST_LABEL`]); publishers are checked through it with `web-api`.
    pub async fn bind(config: IngestServiceConfig, hub: ServiceClient) -> Result<Self, Error> {
        let verifier = HubKeyVerifier::new(hub.clone(), config.thumbnail);
        let server = IngestServer::bind(config.rtmp.clone(), Arc::new(verifier)).await?;
        Ok(Self {
            server,
            config: Arc::new(config),
            hub,
        })
    }

    /// The RTMP listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The RTMP server's handle: its session events, its live streams.
    pub fn handle(&self) -> IngestHandle {
        self.server.handle()
    }

    /// Serves RTMP until `shutdown` completes. Streams still live then are ended, their VODs
    /// registered and their channels set offline before this returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let handle = self.server.handle();
        let streams = Tracker::new();
        let watcher = tokio::spawn(watch_sessions(
            handle,
            self.hub,
            self.config,
            streams.clone(),
        ));
        let served = self.server.run(shutdown).await;
        // The server has ended every publisher: let each stream's task finish its telling.
        watcher.abort();
        streams.wait().await;
        served.map_err(Error::from)
    }
}

/// Counts the streams being packaged, so that `run` can wait for the last to finish.
#[derive(Clone)]
struct Tracker(Arc<tokio::sync::watch::Sender<usize>>);

impl Tracker {
    fn new() -> Self {
        Self(Arc::new(tokio::sync::watch::channel(0).0))
    }

    fn enter(&self) -> TrackerGuard {
        self.0.send_modify(|n| *n += 1);
        TrackerGuard(self.clone())
    }

    async fn wait(&self) {
        let mut count = self.0.subscribe();
        let _ = count.wait_for(|n| *n == 0).await;
    }
}

struct TrackerGuard(Tracker);

impl Drop for TrackerGuard {
    fn drop(&mut self) {
        self.0.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Logs the session lifecycle and starts a stream task for each accepted publisher.
async fn watch_sessions(
    handle: IngestHandle,
    hub: ServiceClient,
    config: Arc<IngestServiceConfig>,
    streams: Tracker,
) {
    let mut events = handle.events();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                tracing::error!(missed, "the ingest fell behind its session events");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        tracing::info!(
            session = event.session(),
            event = event.name(),
            "rtmp session"
        );
        let IngestEvent::PostPublish {
            stream, options, ..
        } = event
        else {
            continue;
        };
        let Some((username, stream_id)) = options.label.as_deref().and_then(split_label) else {
            tracing::error!("an accepted stream has no channel label; ending it");
            handle.end_stream(&stream);
            continue;
        };
        let live = LiveStream {
            handle: handle.clone(),
            hub: hub.clone(),
            config: config.clone(),
            stream,
            username,
            stream_id,
        };
        let guard = streams.enter();
        tokio::spawn(async move {
            live.run().await;
            drop(guard);
        });
    }
}

/// `<username>/<stream id>`, as [`HubKeyVerifier`] labels a stream.
fn split_label(label: &str) -> Option<(String, String)> {
    let (username, stream_id) = label.split_once('/')?;
    Some((username.to_owned(), stream_id.to_owned()))
}

/// One accepted stream, from acceptance to its VOD.
struct LiveStream {
    handle: IngestHandle,
    hub: ServiceClient,
    config: Arc<IngestServiceConfig>,
    stream: StreamName,
    username: String,
    stream_id: String,
}

impl LiveStream {
    async fn run(self) {
        let started_at_ms = unix_ms();
        self.set_online("lurking").await;
        let Some(subscription) = self.handle.subscribe(&self.stream) else {
            // The publisher left before its stream could be read.
            self.set_online("offline").await;
            return;
        };
        let dir = self
            .config
            .media_dir
            .join(&self.username)
            .join(&self.stream_id);
        let thumbnails = self.config.thumbnail.and_then(|preview| {
            let source = self.handle.subscribe(&self.stream)?;
            let (dir, ffmpeg) = (dir.join("thumbs"), self.config.ffmpeg.clone());
            Some(tokio::spawn(async move {
                make_thumbnail(source, preview, dir, &ffmpeg).await
            }))
        });
        let (progress, mut segments) = SegmentProgress::new();
        let mut output = HlsOutput::new(&dir);
        output.progress = Some(progress);
        let packaging = package_hls(subscription, output, &self.config.hls);
        tokio::pin!(packaging);
        // Online once the first segment can be played; the select keeps packaging meanwhile.
        let mut waiting = true;
        let packaged = loop {
            tokio::select! {
                packaged = &mut packaging => break packaged,
                changed = segments.changed(), if waiting => {
                    if changed.is_err() {
                        waiting = false;
                    } else if *segments.borrow_and_update() > 0 {
                        waiting = false;
                        self.set_online("online").await;
                    }
                }
            }
        };
        if let Some(thumbnails) = thumbnails {
            match thumbnails.await {
                Ok(Ok(report)) => tracing::debug!(images = report.images, "thumbnails done"),
                Ok(Err(error)) => tracing::warn!(%error, "thumbnails failed"),
                Err(error) => tracing::warn!(%error, "the thumbnail task failed"),
            }
        }
        match packaged {
            Ok(report) if report.segments > 0 => {
                let vod = json!({
                    "username": self.username,
                    "streamId": self.stream_id,
                    "startedAtMs": started_at_ms,
                    "durationMs": u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
                    "segments": report.segments,
                });
                self.tell("addVod", vod).await;
            }
            Ok(_) => {
                tracing::info!(username = %self.username, "the stream ended before its first segment")
            }
            Err(error) => tracing::error!(%error, username = %self.username, "packaging failed"),
        }
        self.set_online("offline").await;
    }

    async fn set_online(&self, state: &str) {
        let data = json!({
            "username": self.username,
            "streamId": self.stream_id,
            "state": state,
            "online": state != "offline",
        });
        self.tell("setOnline", data).await;
    }

    async fn tell(&self, prompt: &str, data: Value) {
        if let Err(error) = self.hub.tell("web-api", prompt, data).await {
            tracing::warn!(%error, prompt, username = %self.username, "web-api not told");
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
