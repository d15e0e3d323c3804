//! One encode: pull, relay in-process, package each chosen rendition, report.

use super::encoder::{EncoderConfig, StartSpec};
use futures::future::join_all;
use media_ingest::{
    HlsOutput, Pulled, Relay, Rendition, RtmpPull, StreamMetadata, StreamName,
    hls::SegmentProgress, make_previews, package_rendition,
};
use std::{path::PathBuf, time::Duration};
use tokio::sync::{mpsc, oneshot};

/// What a job tells the encoder's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JobReport {
    Available {
        channel: String,
        stream_id: String,
        stream_type: &'static str,
        resolution: String,
        index_file: PathBuf,
    },
    Closed {
        channel: String,
        stream_id: String,
    },
}

pub(crate) struct Job {
    pub(crate) spec: StartSpec,
    pub(crate) config: EncoderConfig,
    pub(crate) reports: mpsc::Sender<JobReport>,
}

/// The renditions to make for a source `source_height` pixels high: the original if asked
/// for, and of the scaled ones the closest to the source and every one below it (the seed's
/// rule). An unknown source height gets every one; nothing left gets the original.
pub(crate) fn select_renditions(
    wanted: &[Rendition],
    source_height: Option<u32>,
) -> Vec<Rendition> {
    let height = |r: &Rendition| match r {
        Rendition::Scaled { height, .. } => Some(*height),
        _ => None,
    };
    let mut chosen: Vec<Rendition> = wanted
        .iter()
        .filter(|r| height(r).is_none())
        .take(1)
        .copied()
        .collect();
    let scaled: Vec<Rendition> = wanted
        .iter()
        .filter(|r| height(r).is_some())
        .copied()
        .collect();
    let limit = match source_height {
        None => u32::MAX,
        Some(source) => scaled
            .iter()
            .filter_map(height)
            .min_by_key(|h| (h.abs_diff(source), *h))
            .unwrap_or(0),
    };
    chosen.extend(
        scaled
            .into_iter()
            .filter(|r| height(r).is_some_and(|h| h <= limit)),
    );
    if chosen.is_empty() {
        chosen.push(Rendition::Original);
    }
    chosen
}

/// `WxH-FPS`: a scaled rendition's own, the original's from the source's metadata.
fn label(rendition: &Rendition, metadata: Option<&StreamMetadata>) -> String {
    match rendition {
        Rendition::Scaled {
            width, height, fps, ..
        } => format!("{width}x{height}-{fps}"),
        _ => metadata
            .and_then(|m| {
                let fps = m.video_frame_rate.map_or(0.0, f64::from).round();
                Some(format!("{}x{}-{fps}", m.video_width?, m.video_height?))
            })
            .unwrap_or_else(|| "ORIGINAL".into()),
    }
}

impl Job {
    pub(crate) async fn run(self, mut stop: oneshot::Receiver<()>) {
        let channel = self.spec.channel.clone();
        let stream_id = self.spec.stream_id.clone();
        self.encode(&mut stop).await;
        let _ = self
            .reports
            .send(JobReport::Closed { channel, stream_id })
            .await;
    }

    /// Pulls with retries: the publisher is accepted at the moment this encode is ordered, and
    /// the streaming server plays its stream only once it has the publisher.
    async fn connect(&self) -> Option<RtmpPull> {
        let give_up = tokio::time::Instant::now() + self.config.source_wait;
        let mut delay = Duration::from_millis(100);
        loop {
            match RtmpPull::connect(&self.spec.source_uri, &self.config.pull).await {
                Ok(pull) => return Some(pull),
                Err(error) if tokio::time::Instant::now() + delay < give_up => {
                    tracing::debug!(%error, retry_in = ?delay, "source not playable yet");
                }
                Err(error) => {
                    tracing::warn!(%error, stream_id = %self.spec.stream_id, "cannot pull the source");
                    return None;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    async fn encode(&self, stop: &mut oneshot::Receiver<()>) {
        let connected = tokio::select! {
            pull = self.connect() => pull,
            _ = &mut *stop => None,
        };
        let Some(mut pull) = connected else {
            return;
        };
        let relay = Relay::default();
        let name = StreamName {
            app: self.spec.channel.clone(),
            key: self.spec.stream_id.clone(),
        };
        let Some(publisher) = relay.publish(&name, self.spec.options.clone()) else {
            return;
        };
        // The metadata (source size) decides the renditions; servers send it before the first
        // frames, so a stream that has sent a few frames without it has none.
        const FRAMES_WITHOUT_METADATA: usize = 32;
        let mut metadata = None;
        let mut early = Vec::new();
        while early.len() < FRAMES_WITHOUT_METADATA {
            let pulled = tokio::select! {
                pulled = pull.next() => pulled,
                _ = &mut *stop => return,
            };
            match pulled {
                Ok(Some(Pulled::Metadata(m))) => {
                    publisher.set_metadata(m.clone());
                    metadata = Some(m);
                    break;
                }
                Ok(Some(Pulled::Frame(frame))) => early.push(frame),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
        let renditions = select_renditions(
            &self.spec.options.renditions,
            metadata.as_ref().and_then(|m| m.video_height),
        );
        let mut labels: Vec<String> = Vec::new();
        let mut work = Vec::new();
        for rendition in renditions {
            let label = label(&rendition, metadata.as_ref());
            if labels.contains(&label) {
                continue; // a scaled copy of the original's own size adds nothing
            }
            labels.push(label.clone());
            let Some(subscription) = relay.subscribe(&name) else {
                return;
            };
            work.push(self.package(subscription, rendition, label));
        }
        if let Some(preview) = self.spec.options.previews
            && let Some(subscription) = relay.subscribe(&name)
        {
            let dir = self
                .config
                .root
                .join("img-preview")
                .join(&self.spec.channel)
                .join(&self.spec.stream_id)
                .join(format!(
                    "{}x{}-{}",
                    preview.width,
                    preview.height,
                    preview.interval.as_secs()
                ));
            let index = dir.join("index.json");
            let ffmpeg = self.config.ffmpeg.clone();
            let resolution = format!("{}x{}", preview.width, preview.height);
            let reports = self.reports.clone();
            let (channel, stream_id) = (self.spec.channel.clone(), self.spec.stream_id.clone());
            work.push(Box::pin(async move {
                let previews = make_previews(subscription, preview, dir, &ffmpeg).await;
                match previews {
                    Ok(report) if report.images > 0 => {
                        let _ = reports
                            .send(JobReport::Available {
                                channel,
                                stream_id,
                                stream_type: "IMG-PREVIEW",
                                resolution,
                                index_file: index,
                            })
                            .await;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "previews failed"),
                }
            }));
        }
        for frame in early {
            publisher.push(frame);
        }
        let packaging = join_all(work);
        let pump = async {
            loop {
                tokio::select! {
                    pulled = pull.next() => match pulled {
                        Ok(Some(Pulled::Frame(frame))) => publisher.push(frame),
                        Ok(Some(Pulled::Metadata(m))) => publisher.set_metadata(m),
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(error) => {
                            tracing::warn!(%error, "the source broke off");
                            break;
                        }
                    },
                    _ = &mut *stop => break,
                }
            }
            // The stream ends for every packager: they close their playlists.
            drop(publisher);
        };
        let ((), _) = tokio::join!(pump, packaging);
    }

    /// Packages one rendition; reports its live playlist at the first segment and its VOD
    /// playlist once complete.
    fn package(
        &self,
        subscription: media_ingest::Subscription,
        rendition: Rendition,
        label: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let dir = self
            .config
            .root
            .join("hls")
            .join(&self.spec.channel)
            .join(&self.spec.stream_id)
            .join(&label);
        let mut output = HlsOutput::new(&dir);
        output.master_playlist = None;
        output.vod_playlist = self.spec.options.record.then(|| "vod-0.m3u8".to_owned());
        let (progress, mut segments) = SegmentProgress::new();
        output.progress = Some(progress);
        let hls = self.config.hls.clone();
        let ffmpeg = self.config.ffmpeg.clone();
        let reports = self.reports.clone();
        let (channel, stream_id) = (self.spec.channel.clone(), self.spec.stream_id.clone());
        let record = self.spec.options.record;
        Box::pin(async move {
            let available = |stream_type: &'static str, file: &str| JobReport::Available {
                channel: channel.clone(),
                stream_id: stream_id.clone(),
                stream_type,
                resolution: label.clone(),
                index_file: dir.join(file),
            };
            let packaging = package_rendition(subscription, rendition, output, &hls, &ffmpeg);
            tokio::pin!(packaging);
            let first = async {
                let _ = segments.wait_for(|n| *n >= 1).await;
            };
            let result = tokio::select! {
                result = &mut packaging => result,
                () = first => {
                    let _ = reports.send(available("HLS-LIVE", "live.m3u8")).await;
                    packaging.await
                }
            };
            match result {
                Ok(report) if record && report.segments > 0 => {
                    let _ = reports.send(available("HLS-VOD", "vod-0.m3u8")).await;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, rendition = %label, "packaging failed"),
            }
        })
    }
}

#[cfg(test)]
mod tests_jobs {
    use super::*;

    fn scaled(height: u32) -> Rendition {
        Rendition::Scaled {
            width: height * 16 / 9,
            height,
            fps: 30,
            kbps: None,
        }
    }

    #[test]
    fn the_closest_resolution_and_every_one_below_it_are_made() {
        let ladder = [scaled(1080), scaled(720), scaled(480), scaled(360)];
        assert_eq!(
            select_renditions(&ladder, Some(700)),
            vec![scaled(720), scaled(480), scaled(360)]
        );
        assert_eq!(
            select_renditions(&ladder, Some(2160)),
            ladder.to_vec(),
            "a source above the ladder gets all of it"
        );
        assert_eq!(select_renditions(&ladder, Some(100)), vec![scaled(360)]);
        assert_eq!(select_renditions(&ladder, None), ladder.to_vec());
        let with_original = [Rendition::Original, scaled(720), scaled(360)];
        assert_eq!(
            select_renditions(&with_original, Some(360)),
            vec![Rendition::Original, scaled(360)]
        );
        assert_eq!(select_renditions(&[], Some(720)), vec![Rendition::Original]);
    }
}
