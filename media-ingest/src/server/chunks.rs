//! RTMP chunking of audio and video messages for players, done once per frame and shared.
//!
//! rml_rtmp serializes each player's messages into a buffer of its own, copying every frame
//! once per player. A chunked media message depends only on the chunk size, the message stream
//! id, the timestamp and the payload, which are the same for every player that plays on message
//! stream 1 (the first stream of a connection, which rml_rtmp gives every player). So each frame
//! is chunked once, lazily, into `Bytes` that all those players write; others get their own.
//!
//! Media goes on chunk streams 7 and 8, which rml_rtmp never uses (it uses 2 to 6), with a full
//! header at the start of every message, so its header compression state is never disturbed.

use crate::media::{MediaFrame, MediaKind};
use bytes::{BufMut, Bytes, BytesMut};

/// The chunk size the server announces to every peer (rml_rtmp's `ServerSessionConfig`).
pub(crate) const OUTBOUND_CHUNK_SIZE: usize = 4096;
/// The message stream that rml_rtmp gives the first stream a player creates.
pub(crate) const SHARED_STREAM_ID: u32 = 1;

const VIDEO_CSID: u8 = 7;
const AUDIO_CSID: u8 = 8;
const EXTENDED_TIMESTAMP: u32 = 0x00ff_ffff;

/// `frame` as RTMP chunks on message stream `stream_id`, chunked at `chunk_size`.
pub(crate) fn chunk(frame: &MediaFrame, stream_id: u32, chunk_size: usize) -> Bytes {
    let (csid, type_id) = match frame.kind {
        MediaKind::Video => (VIDEO_CSID, 9),
        MediaKind::Audio => (AUDIO_CSID, 8),
    };
    let extended = frame.timestamp >= EXTENDED_TIMESTAMP;
    let extra = if extended { 4 } else { 0 };
    let length = frame.data.len();
    let chunks = length.div_ceil(chunk_size).max(1);
    let mut out = BytesMut::with_capacity(length + 12 + extra + (chunks - 1) * (1 + extra));
    // Format 0: timestamp, length, type, stream id (little-endian, as RTMP has it).
    out.put_u8(csid);
    let field = frame.timestamp.min(EXTENDED_TIMESTAMP).to_be_bytes();
    out.put_slice(&field[1..]);
    // Tag bodies come from RTMP messages, whose lengths fit 24 bits.
    out.put_slice(&(length as u32).to_be_bytes()[1..]);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if extended {
        out.put_u32(frame.timestamp);
    }
    for (index, piece) in frame.data.chunks(chunk_size).enumerate() {
        if index > 0 {
            // Format 3: a continuation, which repeats the extended timestamp.
            out.put_u8(0xc0 | csid);
            if extended {
                out.put_u32(frame.timestamp);
            }
        }
        out.put_slice(piece);
    }
    out.freeze()
}

#[cfg(test)]
mod tests_chunks {
    use super::*;
    use rml_rtmp::chunk_io::ChunkDeserializer;

    fn frame(kind: MediaKind, timestamp: u32, length: usize) -> MediaFrame {
        MediaFrame {
            kind,
            timestamp,
            data: Bytes::from((0..length).map(|i| i as u8).collect::<Vec<_>>()),
        }
    }

    #[test]
    fn rml_rtmp_reads_back_what_we_chunk() {
        let mut reader = ChunkDeserializer::new();
        reader
            .set_max_chunk_size(OUTBOUND_CHUNK_SIZE)
            .expect("valid size");
        for frame in [
            frame(MediaKind::Video, 40, 10_000),
            frame(MediaKind::Audio, 41, 300),
            frame(MediaKind::Video, 0x0100_0000, 9000),
            frame(MediaKind::Audio, 0x0100_0017, 0),
            frame(MediaKind::Video, 0x0100_0028, 4096),
        ] {
            let bytes = chunk(&frame, 1, OUTBOUND_CHUNK_SIZE);
            let message = reader
                .get_next_message(&bytes)
                .expect("valid chunks")
                .expect("a whole message");
            assert_eq!(message.data, frame.data);
            assert_eq!(message.timestamp.value, frame.timestamp);
            assert_eq!(
                message.type_id,
                if frame.kind == MediaKind::Video { 9 } else { 8 }
            );
            assert_eq!(message.message_stream_id, 1);
            assert_eq!(
                reader.get_next_message(&[]).expect("valid"),
                None,
                "nothing left over"
            );
        }
    }
}
