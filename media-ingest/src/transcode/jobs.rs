//! The two jobs ffmpeg does for a live stream: extra renditions (re-encoded, then packaged by us
//! exactly like the original) and preview images.

use super::{
    flv::FlvReader,
    supervisor::{FfmpegConfig, Output, supervise},
};
use crate::{
    Error, HlsConfig,
    hls::{HlsOutput, HlsReport, Packager, package_hls},
    streams::Subscription,
    verify::{Preview, Rendition},
};
use bytes::{Buf, Bytes, BytesMut};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Makes `rendition` of a live stream and packages it into HLS under `output` until the stream
/// ends. [`Rendition::Original`] is packaged as it is, without ffmpeg.
pub async fn package_rendition(
    source: Subscription,
    rendition: Rendition,
    output: HlsOutput,
    hls: &HlsConfig,
    ffmpeg: &FfmpegConfig,
) -> Result<HlsReport, Error> {
    let Rendition::Scaled {
        width,
        height,
        fps,
        kbps,
    } = rendition
    else {
        return package_hls(source, output, hls).await;
    };
    // A keyframe at every segment boundary, so segments are cut on time.
    let gop = ((hls.target_segment_duration.as_secs_f64() * f64::from(fps)).round() as u32)
        .max(1)
        .to_string();
    let mut args: Vec<String> = ["-map", "0:v:0", "-map", "0:a:0?", "-vf"]
        .map(String::from)
        .to_vec();
    args.push(format!("scale={width}:{height}"));
    args.extend(["-r".into(), fps.to_string()]);
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
        ]
        .map(String::from),
    );
    args.extend([
        "-g".into(),
        gop.clone(),
        "-keyint_min".into(),
        gop,
        "-sc_threshold".into(),
        "0".into(),
    ]);
    if let Some(kbps) = kbps {
        args.extend([
            "-b:v".into(),
            format!("{kbps}k"),
            "-maxrate".into(),
            format!("{kbps}k"),
            "-bufsize".into(),
            format!("{}k", kbps * 2),
        ]);
    }
    args.extend(["-c:a", "aac", "-b:a", "128k", "-f", "flv", "pipe:1"].map(String::from));

    let label = format!("rendition {width}x{height}-{fps}");
    let mut packager = Packager::new(output, hls, true).await?;
    let (stdout, mut chunks) = mpsc::channel::<Output>(64);
    let supervising = supervise(source, ffmpeg, &label, &args, Some(stdout));
    let packaging = async {
        let mut reader = FlvReader::default();
        // After a parse error, ffmpeg's output is ignored until the next process starts.
        let mut in_sync = true;
        while let Some(output) = chunks.recv().await {
            let chunk = match output {
                Output::Restarted => {
                    reader = FlvReader::default();
                    in_sync = true;
                    continue;
                }
                Output::Bytes(chunk) if in_sync => chunk,
                Output::Bytes(_) => continue,
            };
            reader.feed(&chunk);
            loop {
                match reader.next_frame() {
                    Ok(Some(frame)) => {
                        packager
                            .push(&frame, || Some((u64::from(width), u64::from(height))))
                            .await?
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(job = %label, %error, "ffmpeg's output could not be read; waiting for a restart");
                        in_sync = false;
                        break;
                    }
                }
            }
        }
        Ok::<_, Error>(())
    };
    let (supervised, packaged) = tokio::join!(supervising, packaging);
    packaged?;
    supervised?;
    packager
        .finish(Some((u64::from(width), u64::from(height))))
        .await
}

/// What preview making produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreviewReport {
    /// Images written.
    pub images: u64,
    /// Times ffmpeg died while the stream was live and was restarted.
    pub restarts: u32,
}

/// The largest preview image accepted from ffmpeg.
const MAX_IMAGE: usize = 8 << 20;

/// Writes a preview image of a live stream every `preview.interval` into `dir` until the
/// stream ends: `N.jpg` (from 0), `latest.jpg`, and `index.json`
/// (`{"width", "height", "intervalSeconds", "images": ["0.jpg", …], "latest"}`), each file
/// written atomically. A `width` of 0 keeps the picture's aspect ratio (Open360's thumbnails:
/// `0x300`).
pub async fn make_previews(
    source: Subscription,
    preview: Preview,
    dir: PathBuf,
    ffmpeg: &FfmpegConfig,
) -> Result<PreviewReport, Error> {
    previews(source, preview, dir, ffmpeg, true).await
}

/// Like [`make_previews`], but keeps only `latest.jpg`, replaced at each image: a thumbnail
/// whose disk use does not grow with the stream's length (Open360's).
pub async fn make_thumbnail(
    source: Subscription,
    preview: Preview,
    dir: PathBuf,
    ffmpeg: &FfmpegConfig,
) -> Result<PreviewReport, Error> {
    previews(source, preview, dir, ffmpeg, false).await
}

async fn previews(
    source: Subscription,
    preview: Preview,
    dir: PathBuf,
    ffmpeg: &FfmpegConfig,
    keep_every_image: bool,
) -> Result<PreviewReport, Error> {
    tokio::fs::create_dir_all(&dir).await?;
    let width = if preview.width == 0 {
        "-2".to_owned()
    } else {
        preview.width.to_string()
    };
    let seconds = preview.interval.as_secs_f64().max(0.1);
    let args: Vec<String> = vec![
        "-map".into(),
        "0:v:0".into(),
        "-vf".into(),
        format!("fps=1/{seconds},scale={width}:{}", preview.height),
        "-c:v".into(),
        "mjpeg".into(),
        "-q:v".into(),
        "5".into(),
        "-f".into(),
        "image2pipe".into(),
        "pipe:1".into(),
    ];
    let label = format!("previews {}x{}", preview.width, preview.height);
    let (stdout, mut chunks) = mpsc::channel::<Output>(64);
    let supervising = supervise(source, ffmpeg, &label, &args, Some(stdout));
    let writing = async {
        let mut buffer = BytesMut::new();
        let mut images: Vec<String> = Vec::new();
        let mut written = 0_u64;
        while let Some(output) = chunks.recv().await {
            let chunk = match output {
                // Half an image from the old process is worthless.
                Output::Restarted => {
                    buffer.clear();
                    continue;
                }
                Output::Bytes(chunk) => chunk,
            };
            buffer.extend_from_slice(&chunk);
            while let Some(image) = next_jpeg(&mut buffer) {
                write_atomically(&dir.join("latest.jpg"), &image).await?;
                written += 1;
                if keep_every_image {
                    let name = format!("{}.jpg", images.len());
                    write_atomically(&dir.join(&name), &image).await?;
                    images.push(name);
                    let index = serde_index(&preview, &images);
                    write_atomically(&dir.join("index.json"), index.as_bytes()).await?;
                }
            }
            if buffer.len() > MAX_IMAGE {
                tracing::warn!(job = %label, "ffmpeg wrote {} bytes without a complete JPEG; dropping them", buffer.len());
                buffer.clear();
            }
        }
        Ok::<_, Error>(written)
    };
    let (supervised, written) = tokio::join!(supervising, writing);
    let images = written?;
    let supervised = supervised?;
    Ok(PreviewReport {
        images,
        restarts: supervised.restarts,
    })
}

/// Cuts the first complete JPEG (SOI … EOI) off `buffer`, dropping anything before its SOI.
fn next_jpeg(buffer: &mut BytesMut) -> Option<Bytes> {
    let start = buffer.windows(2).position(|w| w == [0xff, 0xd8])?;
    buffer.advance(start);
    // ffmpeg's baseline JPEGs carry no embedded thumbnail, so the first EOI ends the image.
    let end = buffer.windows(2).skip(2).position(|w| w == [0xff, 0xd9])? + 4;
    Some(buffer.split_to(end).freeze())
}

fn serde_index(preview: &Preview, images: &[String]) -> String {
    serde_json::json!({
        "width": preview.width,
        "height": preview.height,
        "intervalSeconds": preview.interval.as_secs_f64(),
        "images": images,
        "latest": "latest.jpg",
    })
    .to_string()
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    tokio::fs::write(&temporary, bytes).await?;
    tokio::fs::rename(&temporary, path).await?;
    Ok(())
}

#[cfg(test)]
mod tests_jobs {
    use super::*;

    #[test]
    fn jpegs_are_cut_from_a_pipe_in_any_split() {
        let first = [0xff, 0xd8, 1, 2, 0xff, 0x00, 3, 0xff, 0xd9];
        let second = [0xff, 0xd8, 0xff, 0xd9];
        let stream: Vec<u8> = [&[7, 7][..], &first, &second, &[0xff, 0xd8, 5]].concat();
        for split in [1, 3, stream.len()] {
            let mut buffer = BytesMut::new();
            let mut images = Vec::new();
            for piece in stream.chunks(split) {
                buffer.extend_from_slice(piece);
                while let Some(image) = next_jpeg(&mut buffer) {
                    images.push(image.to_vec());
                }
            }
            assert_eq!(
                images,
                vec![first.to_vec(), second.to_vec()],
                "split {split}"
            );
            assert_eq!(&buffer[..], &[0xff, 0xd8, 5], "the incomplete image waits");
        }
    }

    #[test]
    fn the_index_is_json() {
        let preview = Preview {
            width: 320,
            height: 180,
            interval: std::time::Duration::from_millis(1800),
        };
        let index = serde_index(&preview, &["0.jpg".into(), "1.jpg".into()]);
        let index: serde_json::Value = serde_json::from_str(&index).expect("JSON");
        assert_eq!(
            index,
            serde_json::json!({"width": 320, "height": 180, "intervalSeconds": 1.8, "images": ["0.jpg", "1.jpg"], "latest": "latest.jpg"})
        );
    }
}
