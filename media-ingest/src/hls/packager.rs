//! The I/O side of HLS: drives a [`Segmenter`] from a live stream's subscription and writes
//! segments and playlists to disk, each file atomically (a temporary file renamed into place),
//! so a reader never sees a partial one.

use super::{
    playlist::{Playlists, master},
    segmenter::{Segment, Segmenter},
};
use crate::{Error, HlsConfig, media::MediaFrame, streams::Subscription};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::sync::watch;

/// Where one stream's HLS files go, and their names. Segments are `<index>.ts` beside the
/// playlists.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HlsOutput {
    /// The directory of this stream (created if missing). Never derive it from the stream key:
    /// playlist and segment URLs are public.
    pub dir: PathBuf,
    /// The live (sliding window) playlist. Default `live.m3u8`.
    pub live_playlist: String,
    /// The VOD playlist of every segment, if the stream is recorded. Default `vod.m3u8`. Without
    /// one, segments that leave the live window are deleted.
    pub vod_playlist: Option<String>,
    /// The master playlist. Default `master.m3u8`.
    pub master_playlist: Option<String>,
    /// Told the number of segments written after each one is in place (playlists included).
    /// Default none.
    pub progress: Option<SegmentProgress>,
}

/// Counts the segments a packager has written, for whoever waits for the first one (an encoder
/// announces a stream once its playlist can be read). Cheap to clone; all clones count together.
#[derive(Debug, Clone)]
pub struct SegmentProgress(Arc<watch::Sender<u64>>);

impl SegmentProgress {
    /// A counter at 0, and a receiver that sees it change.
    pub fn new() -> (Self, watch::Receiver<u64>) {
        let (sender, receiver) = watch::channel(0);
        (Self(Arc::new(sender)), receiver)
    }

    fn set(&self, segments: u64) {
        self.0.send_replace(segments);
    }
}

impl PartialEq for SegmentProgress {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SegmentProgress {}

impl HlsOutput {
    /// The default names in `dir`, with a VOD recording.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            live_playlist: "live.m3u8".into(),
            vod_playlist: Some("vod.m3u8".into()),
            master_playlist: Some("master.m3u8".into()),
            progress: None,
        }
    }
}

/// What packaging a stream produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HlsReport {
    /// Segments written.
    pub segments: u64,
    /// Their total duration.
    pub duration: Duration,
    /// Frames that could not be packaged (malformed, or of a codec HLS does not carry).
    pub skipped_frames: u64,
}

/// Packages a live stream into HLS under `output` until the stream ends, then closes the
/// playlists (EXT-X-ENDLIST). Malformed frames are skipped and counted; file errors end it.
pub async fn package_hls(
    mut stream: Subscription,
    output: HlsOutput,
    config: &HlsConfig,
) -> Result<HlsReport, Error> {
    // Metadata usually arrives just after the publisher is accepted; without it yet, the
    // segmenter learns about video from the H.264 sequence header.
    let has_video = stream
        .metadata()
        .is_some_and(|m| m.video_codec_id.is_some());
    let mut packager = Packager::new(output, config, has_video).await?;
    while let Some(frame) = stream.next().await {
        packager.push(&frame, || resolution(&stream)).await?;
    }
    let mut report = packager.finish(resolution(&stream)).await?;
    report.skipped_frames += stream.skipped();
    Ok(report)
}

/// Segments frames and writes files as segments complete; the loop of [`package_hls`], shared
/// with renditions made by ffmpeg.
pub(crate) struct Packager {
    output: HlsOutput,
    segmenter: Segmenter,
    playlists: Playlists,
    segments: u64,
    skipped_frames: u64,
}

impl Packager {
    pub(crate) async fn new(
        output: HlsOutput,
        config: &HlsConfig,
        has_video: bool,
    ) -> Result<Self, Error> {
        tokio::fs::create_dir_all(&output.dir).await?;
        Ok(Self {
            output,
            segmenter: Segmenter::new(config.target_segment_duration, has_video),
            playlists: Playlists::new(config.live_window, config.target_segment_duration),
            segments: 0,
            skipped_frames: 0,
        })
    }

    /// Takes one frame; `resolution` is asked for when the master playlist is written.
    pub(crate) async fn push(
        &mut self,
        frame: &MediaFrame,
        resolution: impl FnOnce() -> Option<(u64, u64)>,
    ) -> Result<(), Error> {
        match self.segmenter.push(frame) {
            Ok(None) => Ok(()),
            Ok(Some(segment)) => self.publish(segment, false, resolution).await,
            Err(error) => {
                self.skipped_frames += 1;
                metrics::counter!("media_ingest_hls_skipped_frames_total").increment(1);
                tracing::debug!(%error, "frame not packaged");
                Ok(())
            }
        }
    }

    /// Closes the last segment and the playlists.
    pub(crate) async fn finish(
        mut self,
        resolution: Option<(u64, u64)>,
    ) -> Result<HlsReport, Error> {
        match self.segmenter.finish() {
            Some(segment) => self.publish(segment, true, || resolution).await?,
            None => write_playlists(&self.output, &self.playlists, true).await?,
        }
        Ok(HlsReport {
            segments: self.segments,
            duration: self.playlists.duration(),
            skipped_frames: self.skipped_frames,
        })
    }

    async fn publish(
        &mut self,
        segment: Segment,
        ended: bool,
        resolution: impl FnOnce() -> Option<(u64, u64)>,
    ) -> Result<(), Error> {
        if self.segments == 0 {
            write_master(
                &self.output,
                &segment,
                &self.segmenter.codecs(),
                resolution(),
            )
            .await?;
        }
        publish(&self.output, &mut self.playlists, segment, ended).await?;
        self.segments += 1;
        if let Some(progress) = &self.output.progress {
            progress.set(self.segments);
        }
        Ok(())
    }
}

fn resolution(stream: &Subscription) -> Option<(u64, u64)> {
    let metadata = stream.metadata()?;
    Some((
        u64::from(metadata.video_width?),
        u64::from(metadata.video_height?),
    ))
}

async fn publish(
    output: &HlsOutput,
    playlists: &mut Playlists,
    segment: Segment,
    ended: bool,
) -> Result<(), Error> {
    let uri = format!("{}.ts", segment.index);
    write_atomically(&output.dir.join(&uri), &segment.data).await?;
    metrics::counter!("media_ingest_hls_segments_total").increment(1);
    let evicted = playlists.push(segment.index, uri, segment.duration);
    // Playlists first, deletions after: a reader of the old playlist can still fetch its
    // segments for a moment.
    write_playlists(output, playlists, ended).await?;
    if output.vod_playlist.is_none() {
        for uri in evicted {
            if let Err(error) = tokio::fs::remove_file(output.dir.join(&uri)).await {
                tracing::warn!(%error, segment = %uri, "could not delete an old segment");
            }
        }
    }
    Ok(())
}

async fn write_playlists(
    output: &HlsOutput,
    playlists: &Playlists,
    ended: bool,
) -> Result<(), Error> {
    write_atomically(
        &output.dir.join(&output.live_playlist),
        &playlists.live(ended),
    )
    .await?;
    if let Some(vod) = &output.vod_playlist {
        write_atomically(&output.dir.join(vod), &playlists.vod(ended)).await?;
    }
    Ok(())
}

async fn write_master(
    output: &HlsOutput,
    first: &Segment,
    codecs: &str,
    resolution: Option<(u64, u64)>,
) -> Result<(), Error> {
    let Some(name) = &output.master_playlist else {
        return Ok(());
    };
    // Measured on the first segment, with headroom: BANDWIDTH is a peak, not an average.
    let seconds = first.duration.as_secs_f64().max(0.5);
    let bandwidth = (first.data.len() as f64 * 8.0 / seconds * 1.2) as u64;
    write_atomically(
        &output.dir.join(name),
        &master(&output.live_playlist, bandwidth, codecs, resolution),
    )
    .await
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    tokio::fs::write(&temporary, bytes).await?;
    tokio::fs::rename(&temporary, path).await?;
    Ok(())
}
