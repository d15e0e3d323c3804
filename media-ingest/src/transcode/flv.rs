//! FLV as the pipe format between the ingest and ffmpeg: a writer for ffmpeg's stdin and a
//! streaming reader for its stdout.

use crate::media::{MediaFrame, MediaKind};
use bytes::{Buf, Bytes, BytesMut};

/// The largest tag accepted from ffmpeg (its output is trusted, but bounded all the same).
const MAX_TAG: usize = 8 << 20;

/// The 9-byte FLV header (audio and video present) and the first, zero, previous-tag size.
pub(crate) fn header() -> [u8; 13] {
    [b'F', b'L', b'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// Appends one frame as an FLV tag (and its trailing previous-tag size) to `out`.
pub(crate) fn write_tag(frame: &MediaFrame, out: &mut Vec<u8>) {
    let kind = match frame.kind {
        MediaKind::Audio => 8,
        MediaKind::Video => 9,
    };
    // Tag bodies come from RTMP messages, bounded far below FLV's 24-bit size field.
    let size = u32::try_from(frame.data.len())
        .unwrap_or(u32::MAX)
        .min(0x00ff_ffff);
    let [_, s1, s2, s3] = size.to_be_bytes();
    let [t0, t1, t2, t3] = frame.timestamp.to_be_bytes();
    out.extend_from_slice(&[kind, s1, s2, s3, t1, t2, t3, t0, 0, 0, 0]);
    out.extend_from_slice(&frame.data[..size as usize]);
    out.extend_from_slice(&(size + 11).to_be_bytes());
}

/// Why ffmpeg's FLV could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FlvError {
    #[error("not an FLV stream")]
    NotFlv,
    #[error("an FLV tag of {0} bytes exceeds the limit")]
    TagTooLarge(usize),
}

/// Reads FLV incrementally: feed bytes as they arrive, take the frames as they complete.
#[derive(Default)]
pub(crate) struct FlvReader {
    buffer: BytesMut,
    header_done: bool,
}

impl FlvReader {
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete audio or video frame (script tags are skipped), or `None` until more
    /// bytes arrive.
    pub(crate) fn next_frame(&mut self) -> Result<Option<MediaFrame>, FlvError> {
        if !self.header_done {
            if self.buffer.len() < 9 {
                return Ok(None);
            }
            if &self.buffer[..3] != b"FLV" {
                return Err(FlvError::NotFlv);
            }
            let header = usize::from(self.buffer[8]) | usize::from(self.buffer[7]) << 8;
            if self.buffer.len() < header + 4 {
                return Ok(None);
            }
            self.buffer.advance(header + 4);
            self.header_done = true;
        }
        loop {
            if self.buffer.len() < 11 {
                return Ok(None);
            }
            let size = usize::from(self.buffer[1]) << 16
                | usize::from(self.buffer[2]) << 8
                | usize::from(self.buffer[3]);
            if size > MAX_TAG {
                return Err(FlvError::TagTooLarge(size));
            }
            if self.buffer.len() < 11 + size + 4 {
                return Ok(None);
            }
            let kind = self.buffer[0] & 0x1f;
            let timestamp = u32::from_be_bytes([
                self.buffer[7],
                self.buffer[4],
                self.buffer[5],
                self.buffer[6],
            ]);
            self.buffer.advance(11);
            let data: Bytes = self.buffer.split_to(size).freeze();
            self.buffer.advance(4);
            let kind = match kind {
                8 => MediaKind::Audio,
                9 => MediaKind::Video,
                _ => continue,
            };
            return Ok(Some(MediaFrame {
                kind,
                timestamp,
                data,
            }));
        }
    }
}

#[cfg(test)]
mod tests_flv {
    use super::*;

    fn frame(kind: MediaKind, timestamp: u32, data: &'static [u8]) -> MediaFrame {
        MediaFrame {
            kind,
            timestamp,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn what_is_written_reads_back_in_any_split() {
        let frames = [
            frame(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 1]),
            frame(MediaKind::Audio, 23, &[0xaf, 1, 9]),
            frame(MediaKind::Video, 0x0123_4567, &[0x27, 1, 0, 0, 0]),
        ];
        let mut stream = header().to_vec();
        // A script tag in the middle is skipped.
        stream.extend_from_slice(&[18, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0, 0, 0, 13]);
        for f in &frames {
            write_tag(f, &mut stream);
        }
        for split in [1, 7, 13, stream.len()] {
            let mut reader = FlvReader::default();
            let mut read = Vec::new();
            for piece in stream.chunks(split) {
                reader.feed(piece);
                while let Some(f) = reader.next_frame().expect("valid") {
                    read.push(f);
                }
            }
            assert_eq!(read, frames, "split {split}");
        }
    }

    #[test]
    fn garbage_and_oversized_tags_are_errors() {
        let mut reader = FlvReader::default();
        reader.feed(b"NOT AN FLV FILE");
        assert_eq!(reader.next_frame(), Err(FlvError::NotFlv));
        let mut reader = FlvReader::default();
        reader.feed(&header());
        reader.feed(&[9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(reader.next_frame(), Err(FlvError::TagTooLarge(0x00ff_ffff)));
    }
}
