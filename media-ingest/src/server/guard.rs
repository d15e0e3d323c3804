//! A framing guard in front of rml_rtmp's chunk deserializer.
//!
//! rml_rtmp 0.8 trusts its input: it keeps one in-progress payload for all chunk streams and
//! computes `message_length - bytes_collected` unchecked, so interleaved chunk streams, or a new
//! header arriving mid-message, underflow into a `capacity overflow` panic; and it accepts any
//! chunk size a peer announces. This guard follows the chunk framing in lockstep with it (the
//! same bytes, in the same order, with the same rules for extended timestamps and
//! `SetChunkSize`) and refuses, with a typed error, everything that rml_rtmp cannot handle
//! safely, before rml_rtmp sees the bytes. It holds no payload: its memory is a few bytes per
//! chunk stream, and there are at most [`MAX_CHUNK_STREAMS`] of them.
//!
//! What it refuses (each ends the connection):
//! - a message longer than the configured limit, or a chunk size outside `1..=limit`;
//! - a chunk of another chunk stream, or a new message header, while a message is incomplete
//!   (legal RTMP, but unsupported by rml_rtmp; ffmpeg, OBS and librtmp never send it);
//! - a compressed header on a chunk stream that has had no full header;
//! - more than [`MAX_CHUNK_STREAMS`] chunk streams;
//! - an AMF0 message (commands and data) over [`MAX_AMF_MESSAGE`] bytes or nesting deeper than
//!   [`MAX_AMF_DEPTH`] (rml_amf0 parses recursively: a deep enough nesting would overflow the
//!   stack and abort the process), and more than [`MAX_COMMANDS`] commands on one connection
//!   (rml_rtmp keeps state for each `createStream`, without a bound).

use super::amf0;
use std::collections::HashMap;

/// The largest AMF0 command or data message. Real ones (connect, publish, onMetaData) are under
/// 4 KiB.
pub(crate) const MAX_AMF_MESSAGE: usize = 64 << 10;
/// The deepest AMF0 nesting accepted. Real commands nest 2 levels.
pub(crate) const MAX_AMF_DEPTH: usize = 32;
/// Commands one connection may send. A publisher or player sends about ten.
pub(crate) const MAX_COMMANDS: u32 = 1024;

/// Chunk streams one connection may use. Encoders use 3 to 6.
pub(crate) const MAX_CHUNK_STREAMS: usize = 64;

/// The chunk size every RTMP connection starts with (RTMP 1.0, §5.4.1).
const INITIAL_CHUNK_SIZE: usize = 128;

/// A timestamp field of this value means a 4-byte extended timestamp follows.
const EXTENDED_TIMESTAMP: u32 = 0x00ff_ffff;

/// Message type 1: Set Chunk Size.
const SET_CHUNK_SIZE: u8 = 1;

/// Whether rml_rtmp parses messages of `type_id` as AMF0: data (15, 18) and commands (17, 20).
fn is_amf0(type_id: u8) -> bool {
    matches!(type_id, 15 | 17 | 18 | 20)
}

/// Why the guard refused a connection's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum FramingError {
    /// A message is longer than the configured limit.
    #[error("message of {length} bytes exceeds the limit of {limit}")]
    MessageTooLarge {
        /// The announced length.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The peer announced a chunk size outside `1..=limit`.
    #[error("chunk size {size} is outside 1..={limit}")]
    ChunkSizeOutOfRange {
        /// The announced size.
        size: u32,
        /// The limit.
        limit: usize,
    },
    /// A chunk of another stream, or a new header, arrived while a message was incomplete.
    #[error("chunk stream {csid} interrupted the incomplete message of chunk stream {pending}")]
    Interleaved {
        /// The chunk stream that interrupted.
        csid: u32,
        /// The chunk stream whose message was incomplete.
        pending: u32,
    },
    /// A compressed header referred to a chunk stream with no previous full header.
    #[error("chunk stream {csid} used a compressed header before any full header")]
    NoPreviousHeader {
        /// The chunk stream.
        csid: u32,
    },
    /// The peer used too many chunk streams.
    #[error("more than {MAX_CHUNK_STREAMS} chunk streams")]
    TooManyChunkStreams,
    /// An AMF0 message nests deeper than [`MAX_AMF_DEPTH`].
    #[error("an AMF0 message nests deeper than {MAX_AMF_DEPTH} levels")]
    TooDeeplyNested,
    /// More than [`MAX_COMMANDS`] command messages.
    #[error("more than {MAX_COMMANDS} commands on one connection")]
    TooManyCommands,
}

#[derive(Debug, Clone, Copy, Default)]
struct StreamHeader {
    message_length: usize,
    type_id: u8,
    timestamp_field: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Reading the 1–3 byte basic header.
    Basic,
    /// Reading the 0–11 byte message header of format `fmt`.
    Message,
    /// Reading a 4-byte extended timestamp.
    Extended,
    /// Skipping `remaining_in_chunk` payload bytes.
    Payload,
}

/// Follows RTMP chunk framing and enforces the limits in the module docs.
#[derive(Debug)]
pub(crate) struct ChunkGuard {
    max_message: usize,
    chunk_size: usize,
    headers: HashMap<u32, StreamHeader>,
    stage: Stage,
    scratch: [u8; 11],
    filled: usize,
    fmt: u8,
    csid: u32,
    /// The chunk stream whose message is incomplete, and the bytes it still needs.
    pending: Option<(u32, usize)>,
    remaining_in_chunk: usize,
    /// The payload of a Set Chunk Size or AMF0 message, as it arrives (bounded by
    /// [`MAX_AMF_MESSAGE`]).
    payload: Vec<u8>,
    commands: u32,
}

impl ChunkGuard {
    /// A guard for one connection, refusing messages (and chunk sizes) above `max_message`.
    pub(crate) fn new(max_message: usize) -> Self {
        Self {
            max_message,
            chunk_size: INITIAL_CHUNK_SIZE,
            headers: HashMap::new(),
            stage: Stage::Basic,
            scratch: [0; 11],
            filled: 0,
            fmt: 0,
            csid: 0,
            pending: None,
            remaining_in_chunk: 0,
            payload: Vec::new(),
            commands: 0,
        }
    }

    /// Checks the next bytes of the chunk stream (after the handshake). Once it has returned an
    /// error the connection must be closed; the guard's state is then meaningless.
    pub(crate) fn check(&mut self, mut bytes: &[u8]) -> Result<(), FramingError> {
        while !bytes.is_empty() {
            match self.stage {
                Stage::Basic => {
                    self.scratch[self.filled] = bytes[0];
                    self.filled += 1;
                    bytes = &bytes[1..];
                    let needed = match self.scratch[0] & 0x3f {
                        0 => 2,
                        1 => 3,
                        _ => 1,
                    };
                    if self.filled == needed {
                        self.fmt = self.scratch[0] >> 6;
                        self.csid = match needed {
                            1 => u32::from(self.scratch[0] & 0x3f),
                            2 => 64 + u32::from(self.scratch[1]),
                            _ => 64 + u32::from(self.scratch[1]) + 256 * u32::from(self.scratch[2]),
                        };
                        self.filled = 0;
                        self.start_chunk()?;
                    }
                }
                Stage::Message => {
                    let needed = [11, 7, 3, 0][usize::from(self.fmt)];
                    let take = (needed - self.filled).min(bytes.len());
                    self.scratch[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
                    self.filled += take;
                    bytes = &bytes[take..];
                    if self.filled == needed {
                        self.filled = 0;
                        self.finish_message_header()?;
                    }
                }
                Stage::Extended => {
                    let take = (4 - self.filled).min(bytes.len());
                    self.filled += take;
                    bytes = &bytes[take..];
                    if self.filled == 4 {
                        self.filled = 0;
                        self.start_payload()?;
                    }
                }
                Stage::Payload => {
                    let take = self.remaining_in_chunk.min(bytes.len());
                    self.consume_payload(&bytes[..take])?;
                    bytes = &bytes[take..];
                }
            }
        }
        Ok(())
    }

    /// The basic header is complete: check the chunk stream against the one in progress.
    fn start_chunk(&mut self) -> Result<(), FramingError> {
        if let Some((pending, _)) = self.pending {
            // Only a continuation (format 3) of the same chunk stream may follow.
            if pending != self.csid || self.fmt != 3 {
                return Err(FramingError::Interleaved {
                    csid: self.csid,
                    pending,
                });
            }
        }
        if self.fmt != 0 && !self.headers.contains_key(&self.csid) {
            return Err(FramingError::NoPreviousHeader { csid: self.csid });
        }
        if !self.headers.contains_key(&self.csid) && self.headers.len() == MAX_CHUNK_STREAMS {
            return Err(FramingError::TooManyChunkStreams);
        }
        self.stage = Stage::Message;
        if self.fmt == 3 {
            self.finish_message_header()?;
        }
        Ok(())
    }

    fn finish_message_header(&mut self) -> Result<(), FramingError> {
        let s = &self.scratch;
        let mut header = self.headers.get(&self.csid).copied().unwrap_or_default();
        if self.fmt <= 2 {
            header.timestamp_field = u32::from_be_bytes([0, s[0], s[1], s[2]]);
        }
        if self.fmt <= 1 {
            header.message_length =
                usize::from(s[3]) << 16 | usize::from(s[4]) << 8 | usize::from(s[5]);
            header.type_id = s[6];
            let limit = if is_amf0(header.type_id) {
                MAX_AMF_MESSAGE.min(self.max_message)
            } else {
                self.max_message
            };
            if header.message_length > limit {
                return Err(FramingError::MessageTooLarge {
                    length: header.message_length,
                    limit,
                });
            }
        }
        self.headers.insert(self.csid, header);
        if header.timestamp_field >= EXTENDED_TIMESTAMP {
            self.stage = Stage::Extended;
            Ok(())
        } else {
            self.start_payload()
        }
    }

    fn start_payload(&mut self) -> Result<(), FramingError> {
        let header = self.headers.get(&self.csid).copied().unwrap_or_default();
        let remaining = match self.pending {
            Some((_, remaining)) => remaining,
            None => {
                self.payload.clear();
                header.message_length
            }
        };
        self.remaining_in_chunk = remaining.min(self.chunk_size);
        self.pending = Some((self.csid, remaining));
        self.stage = Stage::Payload;
        // An empty message completes at once.
        self.consume_payload(&[])
    }

    fn consume_payload(&mut self, bytes: &[u8]) -> Result<(), FramingError> {
        let header = self.headers.get(&self.csid).copied().unwrap_or_default();
        if header.type_id == SET_CHUNK_SIZE && self.payload.len() < 4 {
            let want = (4 - self.payload.len()).min(bytes.len());
            self.payload.extend_from_slice(&bytes[..want]);
        } else if is_amf0(header.type_id) {
            // Bounded: AMF0 messages are at most MAX_AMF_MESSAGE long (checked at the header).
            self.payload.extend_from_slice(bytes);
        }
        self.remaining_in_chunk -= bytes.len();
        if let Some((csid, remaining)) = self.pending {
            let remaining = remaining - bytes.len();
            self.pending = (remaining > 0).then_some((csid, remaining));
            if remaining == 0 {
                self.message_complete(header.type_id)?;
            }
        }
        if self.remaining_in_chunk == 0 {
            self.stage = Stage::Basic;
        }
        Ok(())
    }

    /// Checks a message whose last byte has just been seen, before rml_rtmp parses it.
    fn message_complete(&mut self, type_id: u8) -> Result<(), FramingError> {
        if type_id == SET_CHUNK_SIZE {
            return self.apply_chunk_size();
        }
        if !is_amf0(type_id) {
            return Ok(());
        }
        if matches!(type_id, 17 | 20) {
            self.commands += 1;
            if self.commands > MAX_COMMANDS {
                return Err(FramingError::TooManyCommands);
            }
        }
        // rml_rtmp skips a leading zero of "AMF3" commands that are really AMF0.
        let amf = match self.payload.split_first() {
            Some((0, rest)) if type_id == 17 => rest,
            _ => &self.payload[..],
        };
        if amf0::depth(amf, MAX_AMF_DEPTH) > MAX_AMF_DEPTH {
            return Err(FramingError::TooDeeplyNested);
        }
        Ok(())
    }

    fn apply_chunk_size(&mut self) -> Result<(), FramingError> {
        // rml_rtmp fails the session itself on a short payload; the size stays unchanged here.
        let Ok(bytes) = <[u8; 4]>::try_from(self.payload.as_slice()) else {
            return Ok(());
        };
        let size = u32::from_be_bytes(bytes);
        match usize::try_from(size) {
            Ok(accepted) if accepted >= 1 && accepted <= self.max_message => {
                self.chunk_size = accepted;
                Ok(())
            }
            _ => Err(FramingError::ChunkSizeOutOfRange {
                size,
                limit: self.max_message,
            }),
        }
    }
}

#[cfg(test)]
mod tests_guard {
    use super::*;

    /// A chunk with a full (format 0) header on `csid` (2..=63).
    fn full(csid: u8, type_id: u8, length: usize, payload: &[u8]) -> Vec<u8> {
        let mut chunk = vec![csid];
        chunk.extend_from_slice(&[0, 0, 0]);
        chunk.extend_from_slice(&u32::try_from(length).expect("small").to_be_bytes()[1..]);
        chunk.push(type_id);
        chunk.extend_from_slice(&[1, 0, 0, 0]);
        chunk.extend_from_slice(payload);
        chunk
    }

    fn continuation(csid: u8, payload: &[u8]) -> Vec<u8> {
        let mut chunk = vec![0xc0 | csid];
        chunk.extend_from_slice(payload);
        chunk
    }

    #[test]
    fn a_message_split_over_chunks_passes_byte_by_byte_too() {
        let mut stream = full(6, 9, 300, &[7; 128]);
        stream.extend(continuation(6, &[7; 128]));
        stream.extend(continuation(6, &[7; 44]));
        stream.extend(full(4, 8, 10, &[1; 10]));
        let mut whole = ChunkGuard::new(1 << 20);
        assert_eq!(whole.check(&stream), Ok(()));
        let mut bytewise = ChunkGuard::new(1 << 20);
        for byte in &stream {
            assert_eq!(bytewise.check(std::slice::from_ref(byte)), Ok(()));
        }
        assert_eq!(bytewise.pending, None);
        assert_eq!(bytewise.stage, Stage::Basic);
    }

    #[test]
    fn set_chunk_size_changes_the_framing() {
        let mut stream = full(2, SET_CHUNK_SIZE, 4, &4096u32.to_be_bytes());
        stream.extend(full(6, 9, 1000, &[0; 1000]));
        let mut guard = ChunkGuard::new(1 << 20);
        assert_eq!(guard.check(&stream), Ok(()));
        assert_eq!(guard.chunk_size, 4096);
        assert_eq!(guard.pending, None);
    }

    #[test]
    fn chunk_sizes_outside_the_limit_are_refused() {
        for size in [0u32, 1 << 21, 0x8000_0000, u32::MAX] {
            let mut guard = ChunkGuard::new(1 << 20);
            let refused = guard.check(&full(2, SET_CHUNK_SIZE, 4, &size.to_be_bytes()));
            assert_eq!(
                refused,
                Err(FramingError::ChunkSizeOutOfRange {
                    size,
                    limit: 1 << 20
                })
            );
        }
    }

    #[test]
    fn an_oversized_message_is_refused_at_its_header() {
        let mut guard = ChunkGuard::new(1000);
        let header_only = &full(6, 9, 1001, &[])[..12];
        assert_eq!(
            guard.check(header_only),
            Err(FramingError::MessageTooLarge {
                length: 1001,
                limit: 1000
            })
        );
    }

    #[test]
    fn interleaving_and_mid_message_headers_are_refused() {
        let mut guard = ChunkGuard::new(1 << 20);
        let mut stream = full(6, 9, 300, &[0; 128]);
        stream.extend(full(4, 8, 10, &[0; 10]));
        assert_eq!(
            guard.check(&stream),
            Err(FramingError::Interleaved {
                csid: 4,
                pending: 6
            })
        );

        let mut guard = ChunkGuard::new(1 << 20);
        let mut stream = full(6, 9, 300, &[0; 128]);
        stream.extend(full(6, 9, 10, &[0; 10]));
        assert_eq!(
            guard.check(&stream),
            Err(FramingError::Interleaved {
                csid: 6,
                pending: 6
            })
        );
    }

    #[test]
    fn compressed_headers_need_a_full_one_first() {
        let mut guard = ChunkGuard::new(1 << 20);
        assert_eq!(
            guard.check(&[0x46, 0, 0, 0, 0, 0, 1, 9]),
            Err(FramingError::NoPreviousHeader { csid: 6 })
        );
    }

    #[test]
    fn extended_timestamps_are_skipped_as_rml_rtmp_does() {
        // Timestamp field 0xffffff: four more bytes follow the header, before the payload; a
        // continuation of the same message carries them again.
        let mut stream = vec![6, 0xff, 0xff, 0xff, 0, 0, 200, 9, 1, 0, 0, 0, 0, 0, 0, 1];
        stream.extend_from_slice(&[5; 128]);
        stream.extend_from_slice(&[0xc6, 0, 0, 0, 1]);
        stream.extend_from_slice(&[5; 72]);
        let mut guard = ChunkGuard::new(1 << 20);
        assert_eq!(guard.check(&stream), Ok(()));
        assert_eq!((guard.pending, guard.stage), (None, Stage::Basic));
    }

    #[test]
    fn deeply_nested_amf0_is_refused_before_rml_rtmp_parses_it() {
        let mut command = vec![2, 0, 7];
        command.extend_from_slice(b"connect");
        command.push(3);
        for _ in 0..100 {
            command.extend_from_slice(&[0, 1, b'a', 3]);
        }
        let mut guard = ChunkGuard::new(1 << 20);
        let mut stream = full(2, SET_CHUNK_SIZE, 4, &65_536u32.to_be_bytes());
        stream.extend(full(3, 20, command.len(), &command));
        assert_eq!(guard.check(&stream), Err(FramingError::TooDeeplyNested));

        // The same as "AMF3" (type 17) with rml_rtmp's leading zero.
        let mut guard = ChunkGuard::new(1 << 20);
        let mut amf3 = vec![0];
        amf3.extend_from_slice(&command);
        let mut stream = full(2, SET_CHUNK_SIZE, 4, &65_536u32.to_be_bytes());
        stream.extend(full(3, 17, amf3.len(), &amf3));
        assert_eq!(guard.check(&stream), Err(FramingError::TooDeeplyNested));
    }

    #[test]
    fn amf0_messages_are_bounded_in_size_and_commands_in_number() {
        let mut guard = ChunkGuard::new(1 << 20);
        let header_only = &full(3, 20, MAX_AMF_MESSAGE + 1, &[])[..12];
        assert_eq!(
            guard.check(header_only),
            Err(FramingError::MessageTooLarge {
                length: MAX_AMF_MESSAGE + 1,
                limit: MAX_AMF_MESSAGE
            })
        );

        let mut guard = ChunkGuard::new(1 << 20);
        let create_stream = [
            2, 0, 12, b'c', b'r', b'e', b'a', b't', b'e', b'S', b't', b'r', b'e', b'a', b'm',
        ];
        for _ in 0..MAX_COMMANDS {
            assert_eq!(
                guard.check(&full(3, 20, create_stream.len(), &create_stream)),
                Ok(())
            );
        }
        assert_eq!(
            guard.check(&full(3, 20, create_stream.len(), &create_stream)),
            Err(FramingError::TooManyCommands)
        );
    }

    #[test]
    fn chunk_streams_are_bounded() {
        let mut guard = ChunkGuard::new(1 << 20);
        for csid in 0..MAX_CHUNK_STREAMS {
            let id = u8::try_from(csid).expect("small");
            assert_eq!(
                guard.check(&[0, id, 0, 0, 0, 0, 0, 0, 8, 1, 0, 0, 0]),
                Ok(()),
                "csid {}",
                64 + csid
            );
        }
        assert_eq!(
            guard.check(&[0, 200, 0, 0, 0, 0, 0, 0, 8, 1, 0, 0, 0]),
            Err(FramingError::TooManyChunkStreams)
        );
    }
}
