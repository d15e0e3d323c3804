//! The media a publisher sends, as FLV tag bodies (the payload of RTMP audio and video
//! messages), classified just enough to start players at a keyframe.

use bytes::Bytes;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// An FLV audio tag body (AAC: sound format 10).
    Audio,
    /// An FLV video tag body (H.264: codec 7).
    Video,
}

/// One audio or video message of a stream; the bytes are shared by every consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFrame {
    /// Audio or video.
    pub kind: MediaKind,
    /// The RTMP timestamp, in milliseconds.
    pub timestamp: u32,
    /// The FLV tag body.
    pub data: Bytes,
}

impl MediaFrame {
    /// A video frame that starts a group of pictures: FLV frame type 1 carrying pictures (not a
    /// sequence header, not an end-of-sequence marker).
    pub fn is_keyframe(&self) -> bool {
        self.kind == MediaKind::Video
            && self.data.first().is_some_and(|b| b >> 4 == 1)
            && self.data.get(1) == Some(&1)
    }

    /// The decoder configuration (AVC sequence header or AAC AudioSpecificConfig) that players
    /// need before any frame.
    pub fn is_sequence_header(&self) -> bool {
        match self.kind {
            // H.264 (codec 7), AVCPacketType 0.
            MediaKind::Video => {
                self.data.first().is_some_and(|b| b & 0x0f == 7) && self.data.get(1) == Some(&0)
            }
            // AAC (sound format 10), AACPacketType 0.
            MediaKind::Audio => {
                self.data.first().is_some_and(|b| b >> 4 == 10) && self.data.get(1) == Some(&0)
            }
        }
    }
}

#[cfg(test)]
mod tests_media {
    use super::*;

    fn frame(kind: MediaKind, bytes: &'static [u8]) -> MediaFrame {
        MediaFrame {
            kind,
            timestamp: 0,
            data: Bytes::from_static(bytes),
        }
    }

    #[test]
    fn flv_tags_are_classified() {
        assert!(frame(MediaKind::Video, &[0x17, 0x00, 0, 0, 0]).is_sequence_header());
        assert!(!frame(MediaKind::Video, &[0x17, 0x00, 0, 0, 0]).is_keyframe());
        assert!(frame(MediaKind::Video, &[0x17, 0x01, 0, 0, 0]).is_keyframe());
        assert!(!frame(MediaKind::Video, &[0x27, 0x01, 0, 0, 0]).is_keyframe());
        assert!(
            !frame(MediaKind::Video, &[0x17, 0x02, 0, 0, 0]).is_keyframe(),
            "end of sequence"
        );
        assert!(frame(MediaKind::Audio, &[0xaf, 0x00, 0x12, 0x10]).is_sequence_header());
        assert!(!frame(MediaKind::Audio, &[0xaf, 0x01, 0x21]).is_sequence_header());
        assert!(!frame(MediaKind::Video, &[]).is_keyframe());
        assert!(!frame(MediaKind::Audio, &[]).is_sequence_header());
    }
}
