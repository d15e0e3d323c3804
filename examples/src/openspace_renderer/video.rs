//! The moving test picture: ffmpeg renders `testsrc2` and encodes it to VP8 in real time
//! (`-re`), writing an IVF stream to its stdout; each IVF frame becomes one sample of the
//! session's track.
//!
//! IVF: a 32-byte file header (`DKIF`, version, header size, FourCC, width, height, …), then
//! per frame a 12-byte header (4-byte little-endian size, 8-byte timestamp) and the frame.

use rtc::media::Sample;
use std::{
    path::PathBuf,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _},
    process::Command,
    sync::watch,
};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

/// Frames per second of the picture.
pub(crate) const FRAME_RATE: u32 = 25;
/// How long each frame is shown: `1 / FRAME_RATE`.
pub(crate) const FRAME_DURATION: Duration = Duration::from_millis(1000 / FRAME_RATE as u64);
/// The largest frame accepted from ffmpeg: a 4K keyframe at a sane bitrate is far smaller.
const MAX_FRAME_BYTES: u32 = 8 << 20;
const FILE_HEADER_BYTES: usize = 32;
const FRAME_HEADER_BYTES: usize = 12;

/// What ffmpeg is asked to render.
#[derive(Debug, Clone)]
pub(crate) struct PictureConfig {
    /// The ffmpeg program.
    pub(crate) ffmpeg: PathBuf,
    /// Picture width in pixels.
    pub(crate) width: u32,
    /// Picture height in pixels.
    pub(crate) height: u32,
}

impl PictureConfig {
    /// ffmpeg's arguments: `testsrc2` at the configured size, VP8 for real-time streaming
    /// (no look-ahead, so no invisible alt-ref frames; a keyframe every second, so a viewer
    /// that joins or loses a keyframe waits at most a second), IVF on stdout.
    fn arguments(&self) -> Vec<String> {
        let source = format!(
            "testsrc2=size={}x{}:rate={FRAME_RATE}",
            self.width, self.height
        );
        let gop = FRAME_RATE.to_string();
        [
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            &source,
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-lag-in-frames",
            "0",
            "-b:v",
            "1M",
            "-g",
            &gop,
            "-pix_fmt",
            "yuv420p",
            "-f",
            "ivf",
            "pipe:1",
        ]
        .map(String::from)
        .to_vec()
    }
}

/// Why the picture stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VideoError {
    /// ffmpeg could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// ffmpeg wrote something that is not IVF.
    #[error(transparent)]
    Ivf(#[from] IvfError),
    /// ffmpeg ended its stream.
    #[error("ffmpeg ended its stream ({0})")]
    Ended(String),
}

/// A broken IVF stream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IvfError {
    /// The file header is not an IVF header.
    #[error("not an IVF stream: {0}")]
    NotIvf(&'static str),
    /// A frame header announces a frame over [`MAX_FRAME_BYTES`].
    #[error("an IVF frame of {0} bytes is over the limit")]
    FrameTooLarge(u32),
    /// Reading failed.
    #[error("reading the IVF stream: {0}")]
    Io(#[from] std::io::Error),
}

/// The file header's fields that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IvfHeader {
    /// `VP80`, `VP90`, …
    pub(crate) fourcc: [u8; 4],
    /// Picture width.
    pub(crate) width: u16,
    /// Picture height.
    pub(crate) height: u16,
}

/// Reads an IVF stream frame by frame.
pub(crate) struct IvfReader<R> {
    reader: R,
}

impl<R: AsyncRead + Unpin> IvfReader<R> {
    /// Reads the file header.
    pub(crate) async fn open(mut reader: R) -> Result<(Self, IvfHeader), IvfError> {
        let mut header = [0u8; FILE_HEADER_BYTES];
        reader.read_exact(&mut header).await?;
        if &header[0..4] != b"DKIF" {
            return Err(IvfError::NotIvf("no DKIF signature"));
        }
        let header_size = usize::from(u16::from_le_bytes([header[6], header[7]]));
        if header_size < FILE_HEADER_BYTES {
            return Err(IvfError::NotIvf("a header shorter than 32 bytes"));
        }
        // A longer header (none is known) is skipped.
        let mut rest = vec![0u8; header_size - FILE_HEADER_BYTES];
        reader.read_exact(&mut rest).await?;
        let parsed = IvfHeader {
            fourcc: [header[8], header[9], header[10], header[11]],
            width: u16::from_le_bytes([header[12], header[13]]),
            height: u16::from_le_bytes([header[14], header[15]]),
        };
        Ok((Self { reader }, parsed))
    }

    /// The next frame; `None` at the end of the stream (a frame cut short counts as the end:
    /// ffmpeg was stopped mid-write).
    pub(crate) async fn next_frame(&mut self) -> Result<Option<Vec<u8>>, IvfError> {
        let mut header = [0u8; FRAME_HEADER_BYTES];
        if let Err(error) = self.reader.read_exact(&mut header).await {
            return end_or(error);
        }
        let size = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        if size > MAX_FRAME_BYTES {
            return Err(IvfError::FrameTooLarge(size));
        }
        let mut frame = vec![0u8; size as usize];
        if let Err(error) = self.reader.read_exact(&mut frame).await {
            return end_or(error);
        }
        Ok(Some(frame))
    }
}

fn end_or<T>(error: std::io::Error) -> Result<Option<T>, IvfError> {
    if error.kind() == std::io::ErrorKind::UnexpectedEof {
        Ok(None)
    } else {
        Err(error.into())
    }
}

/// Runs ffmpeg and writes each frame it encodes to `track` (SSRC `ssrc`) once `payload_type`
/// holds the negotiated payload type; frames before that are dropped (the connection is not up
/// yet, and the next keyframe is at most a second away). Ends with ffmpeg; dropping the future
/// kills ffmpeg.
pub(crate) async fn stream(
    config: PictureConfig,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: watch::Receiver<Option<u8>>,
) -> Result<(), VideoError> {
    let mut child = Command::new(&config.ffmpeg)
        .args(config.arguments())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // ffmpeg's errors (at -loglevel error) go to our stderr, next to our own log.
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| VideoError::Spawn {
            program: config.ffmpeg.display().to_string(),
            source,
        })?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| VideoError::Ended("no stdout".into()))?;
    let (mut ivf, header) = IvfReader::open(stdout).await?;
    tracing::debug!(
        fourcc = %String::from_utf8_lossy(&header.fourcc),
        width = header.width,
        height = header.height,
        "ffmpeg is encoding"
    );
    let mut written: u64 = 0;
    let mut failed: u64 = 0;
    while let Some(frame) = ivf.next_frame().await? {
        let Some(payload_type) = *payload_type.borrow() else {
            continue;
        };
        let sample = Sample {
            data: frame.into(),
            duration: FRAME_DURATION,
            ..Sample::new(Instant::now())
        };
        // Until the transport is up the track is not bound and writes fail; after that a
        // failure is a lost frame, which the next keyframe repairs.
        match track
            .sample_writer(ssrc, payload_type)
            .write_sample(&sample)
            .await
        {
            Ok(()) => {
                written += 1;
                if written == 1 {
                    tracing::info!("the first frame went out");
                }
            }
            Err(error) => {
                failed += 1;
                if failed.is_power_of_two() {
                    tracing::debug!(%error, failed, "a frame was not sent");
                }
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_or_else(|error| error.to_string(), |status| status.to_string());
    Err(VideoError::Ended(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_header(width: u16, height: u16) -> Vec<u8> {
        let mut header = b"DKIF".to_vec();
        header.extend(0u16.to_le_bytes());
        header.extend(32u16.to_le_bytes());
        header.extend(b"VP80");
        header.extend(width.to_le_bytes());
        header.extend(height.to_le_bytes());
        header.extend(25u32.to_le_bytes());
        header.extend(1u32.to_le_bytes());
        header.extend(u32::MAX.to_le_bytes());
        header.extend(0u32.to_le_bytes());
        header
    }

    fn frame(data: &[u8], pts: u64) -> Vec<u8> {
        let mut bytes = u32::try_from(data.len())
            .expect("small")
            .to_le_bytes()
            .to_vec();
        bytes.extend(pts.to_le_bytes());
        bytes.extend(data);
        bytes
    }

    #[tokio::test]
    async fn frames_are_read_in_order_and_the_end_is_clean() {
        let mut stream = file_header(320, 240);
        stream.extend(frame(b"key", 0));
        stream.extend(frame(b"", 1));
        stream.extend(frame(b"delta", 2));
        let (mut reader, header) = IvfReader::open(stream.as_slice()).await.expect("header");
        assert_eq!(
            header,
            IvfHeader {
                fourcc: *b"VP80",
                width: 320,
                height: 240
            }
        );
        assert_eq!(
            reader.next_frame().await.expect("read"),
            Some(b"key".to_vec())
        );
        assert_eq!(reader.next_frame().await.expect("read"), Some(Vec::new()));
        assert_eq!(
            reader.next_frame().await.expect("read"),
            Some(b"delta".to_vec())
        );
        assert_eq!(reader.next_frame().await.expect("read"), None);
    }

    #[tokio::test]
    async fn a_frame_cut_short_ends_the_stream() {
        let mut stream = file_header(2, 2);
        stream.extend(&frame(b"whole frame", 0)[..15]);
        let (mut reader, _) = IvfReader::open(stream.as_slice()).await.expect("header");
        assert_eq!(reader.next_frame().await.expect("read"), None);
    }

    #[tokio::test]
    async fn garbage_and_giant_frames_are_refused() {
        let not_ivf = vec![b'x'; 64];
        assert!(matches!(
            IvfReader::open(not_ivf.as_slice()).await,
            Err(IvfError::NotIvf(_))
        ));
        assert!(matches!(
            IvfReader::open(&b"DKIF"[..]).await,
            Err(IvfError::Io(_))
        ));
        let mut stream = file_header(2, 2);
        stream.extend(u32::MAX.to_le_bytes());
        stream.extend(0u64.to_le_bytes());
        let (mut reader, _) = IvfReader::open(stream.as_slice()).await.expect("header");
        assert!(matches!(
            reader.next_frame().await,
            Err(IvfError::FrameTooLarge(u32::MAX))
        ));
    }

    #[test]
    fn ffmpeg_renders_the_configured_size_as_vp8_ivf_on_stdout() {
        let config = PictureConfig {
            ffmpeg: "ffmpeg".into(),
            width: 320,
            height: 240,
        };
        let arguments = config.arguments().join(" ");
        assert!(
            arguments.contains("-re -f lavfi -i testsrc2=size=320x240:rate=25 -c:v libvpx"),
            "{arguments}"
        );
        assert!(arguments.ends_with("-f ivf pipe:1"), "{arguments}");
    }
}
