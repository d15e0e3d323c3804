//! Frames in, MPEG-TS segments out: a segment starts at a video keyframe (or, without video,
//! at any audio frame) and is cut at the first keyframe at or after the target duration.
//! Sans-IO: time is the frames' own timestamps.

use super::{
    codec::{AacConfig, AvcConfig, CodecError, VideoTag},
    ts::{AUDIO_PID, AccessUnit, TsWriter, VIDEO_PID},
};
use crate::media::{MediaFrame, MediaKind};
use std::time::Duration;

/// Added to every timestamp (1.4 s at 90 kHz, as ffmpeg does) so that PTS stays above DTS and
/// the PCR (a little behind DTS) never goes negative.
const TIMESTAMP_OFFSET: u64 = 126_000;

/// No segment grows beyond this, keyframe or not.
const MAX_SEGMENT_BYTES: usize = 64 << 20;

/// RTMP's 32-bit millisecond timestamps on a 64-bit timeline: wraps (every 49.7 days) are
/// unwrapped, small steps back (audio and video interleave a little out of order) are kept,
/// and a jump back of more than 10 s (a publisher that reset its clock) continues just after
/// the last time, so the output never runs backwards.
#[derive(Default)]
struct Timeline {
    last_raw: Option<u32>,
    last: u64,
}

impl Timeline {
    fn map(&mut self, raw: u32) -> u64 {
        let mapped = match self.last_raw {
            None => u64::from(raw),
            Some(previous) => {
                // The signed distance, modulo 2^32.
                let step = i64::from(raw.wrapping_sub(previous) as i32);
                if step >= -10_000 {
                    self.last.saturating_add_signed(step)
                } else {
                    self.last + 1
                }
            }
        };
        self.last_raw = Some(raw);
        self.last = mapped;
        mapped
    }
}

/// A finished MPEG-TS segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Segment {
    /// Its sequence number, from 0.
    pub index: u64,
    /// Its duration, from its first frame to the first frame of the next segment.
    pub duration: Duration,
    /// The TS packets, starting with the PAT and PMT.
    pub data: Vec<u8>,
}

struct OpenSegment {
    index: u64,
    start_ms: u64,
    /// The time of the last frame of the kind that drives cuts, and the interval before it.
    last_ms: u64,
    frame_interval_ms: u64,
    data: Vec<u8>,
}

/// Turns a stream's frames into MPEG-TS segments; sans-IO (the frames' timestamps are its
/// clock). [`package_hls`](crate::package_hls) drives one and writes the files.
///
/// ```
/// use media_ingest::hls::Segmenter;
/// use std::time::Duration;
///
/// let mut segmenter = Segmenter::new(Duration::from_secs(2), true);
/// // for frame in stream { if let Some(segment) = segmenter.push(&frame)? { … } }
/// assert!(segmenter.finish().is_none(), "no keyframe, no segment");
/// ```
pub struct Segmenter {
    target_ms: u64,
    has_video: bool,
    avc: Option<AvcConfig>,
    aac: Option<AacConfig>,
    writer: TsWriter,
    open: Option<OpenSegment>,
    next_index: u64,
    scratch: Vec<u8>,
    timeline: Timeline,
}

impl Segmenter {
    /// `has_video`: whether the stream carries video (from its metadata); segments then start
    /// at keyframes. Seeing an H.264 sequence header sets it too.
    pub fn new(target: Duration, has_video: bool) -> Self {
        let target_ms = u64::try_from(target.as_millis()).unwrap_or(u64::MAX);
        Self {
            target_ms,
            has_video,
            avc: None,
            aac: None,
            writer: TsWriter::new(has_video, true),
            open: None,
            next_index: 0,
            scratch: Vec::new(),
            timeline: Timeline::default(),
        }
    }

    /// `avc1.…,mp4a.40.…` for the master playlist, once the configurations are known.
    pub fn codecs(&self) -> String {
        let codecs: Vec<String> = self
            .avc
            .iter()
            .map(|avc| avc.codec.clone())
            .chain(self.aac.iter().map(AacConfig::codec))
            .collect();
        codecs.join(",")
    }

    /// Takes the next frame; returns the segment it completed, if any. A malformed frame is an
    /// error and is skipped; the segmenter stays usable.
    pub fn push(&mut self, frame: &MediaFrame) -> Result<Option<Segment>, CodecError> {
        let ms = self.timeline.map(frame.timestamp);
        // A segment that keeps growing (no keyframe comes, or the clock jumped back) is cut
        // anyway: no segment outgrows three targets or MAX_SEGMENT_BYTES.
        if let Some(open) = &self.open
            && (ms.saturating_sub(open.start_ms) >= self.target_ms.saturating_mul(3)
                || open.data.len() >= MAX_SEGMENT_BYTES)
        {
            let finished = self.cut(ms);
            let pushed = self.push_at(frame, ms)?;
            return Ok(finished.or(pushed));
        }
        self.push_at(frame, ms)
    }

    fn push_at(&mut self, frame: &MediaFrame, ms: u64) -> Result<Option<Segment>, CodecError> {
        match frame.kind {
            MediaKind::Video => {
                let tag = VideoTag::parse(&frame.data)?;
                if tag.sequence_header {
                    self.avc = Some(AvcConfig::parse(tag.payload)?);
                    if !self.has_video {
                        // Video after audio-only segments: close the open one (its tables list
                        // no video); the next starts at a keyframe with new tables.
                        self.has_video = true;
                        self.writer = TsWriter::new(true, true);
                        return Ok(self.finish());
                    }
                    return Ok(None);
                }
                if tag.end_of_sequence {
                    return Ok(None);
                }
                let avc = self
                    .avc
                    .as_ref()
                    .ok_or(CodecError::NoConfiguration("video"))?;
                self.scratch.clear();
                avc.annex_b(tag.payload, tag.keyframe, &mut self.scratch)?;
                let finished = if tag.keyframe { self.cut_at(ms) } else { None };
                let decode = ms * 90 + TIMESTAMP_OFFSET;
                let pts = (i64::try_from(decode).unwrap_or(i64::MAX)
                    + i64::from(tag.composition_offset) * 90)
                    .max(0)
                    .unsigned_abs();
                // A negative composition offset would put presentation before decoding, which
                // MPEG-TS forbids.
                let dts = decode.min(pts);
                let unit = AccessUnit {
                    pid: VIDEO_PID,
                    pts,
                    dts,
                    keyframe: tag.keyframe,
                    data: &self.scratch,
                };
                Self::write(&mut self.writer, self.open.as_mut(), Some(ms), &unit);
                Ok(finished)
            }
            MediaKind::Audio => {
                let [_, packet_type, payload @ ..] = &frame.data[..] else {
                    return Err(CodecError::Truncated("audio tag header"));
                };
                if frame.data[0] >> 4 != 10 {
                    return Err(CodecError::Unsupported("audio other than AAC"));
                }
                if *packet_type == 0 {
                    self.aac = Some(AacConfig::parse(payload)?);
                    return Ok(None);
                }
                let aac = self.aac.ok_or(CodecError::NoConfiguration("audio"))?;
                self.scratch.clear();
                aac.adts(payload, &mut self.scratch)?;
                let finished = if self.has_video {
                    None
                } else {
                    self.cut_at(ms)
                };
                let dts = ms * 90 + TIMESTAMP_OFFSET;
                let unit = AccessUnit {
                    pid: AUDIO_PID,
                    pts: dts,
                    dts,
                    keyframe: false,
                    data: &self.scratch,
                };
                let driving = (!self.has_video).then_some(ms);
                Self::write(&mut self.writer, self.open.as_mut(), driving, &unit);
                Ok(finished)
            }
        }
    }

    /// At a point where a segment may start (`ms`): opens the first segment, or closes the open
    /// one and opens the next when it has reached the target duration.
    fn cut_at(&mut self, ms: u64) -> Option<Segment> {
        match &self.open {
            Some(open) if ms.saturating_sub(open.start_ms) < self.target_ms => None,
            _ => self.cut(ms),
        }
    }

    /// Closes the open segment, if any, at `ms`, and opens the next one there.
    fn cut(&mut self, ms: u64) -> Option<Segment> {
        let finished = match &self.open {
            Some(_) => self.open.take().map(|open| Segment {
                index: open.index,
                duration: Duration::from_millis(ms.saturating_sub(open.start_ms)),
                data: open.data,
            }),
            None => None,
        };
        let mut data = Vec::with_capacity(
            finished
                .as_ref()
                .map_or(1 << 16, |s| s.data.len() + (s.data.len() >> 3)),
        );
        self.writer.write_tables(&mut data);
        self.open = Some(OpenSegment {
            index: self.next_index,
            start_ms: ms,
            last_ms: ms,
            frame_interval_ms: 0,
            data,
        });
        self.next_index += 1;
        finished
    }

    /// Writes `unit` into the open segment; frames before the first segment opens (video
    /// before the first keyframe) are dropped. `driving` is the time of a frame of the kind
    /// that drives cuts, which measures the frame interval.
    fn write(
        writer: &mut TsWriter,
        open: Option<&mut OpenSegment>,
        driving: Option<u64>,
        unit: &AccessUnit<'_>,
    ) {
        if let Some(open) = open {
            writer.write_access_unit(unit, &mut open.data);
            if let Some(ms) = driving.filter(|ms| *ms > open.last_ms) {
                open.frame_interval_ms = ms - open.last_ms;
                open.last_ms = ms;
            }
        }
    }

    /// Closes the open segment at the end of the stream; its duration runs to its last frame
    /// plus one frame interval.
    pub fn finish(&mut self) -> Option<Segment> {
        let open = self.open.take()?;
        let duration = open.last_ms - open.start_ms + open.frame_interval_ms;
        Some(Segment {
            index: open.index,
            duration: Duration::from_millis(duration),
            data: open.data,
        })
    }
}

#[cfg(test)]
mod tests_segmenter {
    use super::*;
    use bytes::Bytes;

    const AVC_HEADER: [u8; 22] = [
        0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 1, 2, 3, 1, 0, 2, 0x68, 9,
    ];

    fn video(ms: u32, keyframe: bool) -> MediaFrame {
        let mut data = vec![if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0, 0, 0, 0, 2];
        data.extend_from_slice(if keyframe {
            &[0x65, 0x88]
        } else {
            &[0x41, 0x9a]
        });
        MediaFrame {
            kind: MediaKind::Video,
            timestamp: ms,
            data: Bytes::from(data),
        }
    }

    fn audio(ms: u32) -> MediaFrame {
        MediaFrame {
            kind: MediaKind::Audio,
            timestamp: ms,
            data: Bytes::from_static(&[0xaf, 1, 0x21, 0x10]),
        }
    }

    fn headers(segmenter: &mut Segmenter) {
        let avc = MediaFrame {
            kind: MediaKind::Video,
            timestamp: 0,
            data: Bytes::from_static(&AVC_HEADER),
        };
        let aac = MediaFrame {
            kind: MediaKind::Audio,
            timestamp: 0,
            data: Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
        };
        assert_eq!(segmenter.push(&avc), Ok(None));
        assert_eq!(segmenter.push(&aac), Ok(None));
    }

    /// 25 fps video with a keyframe every `gop` frames and 23 ms audio, for `seconds`.
    fn run(segmenter: &mut Segmenter, seconds: u32, gop: u32) -> Vec<Segment> {
        let mut segments = Vec::new();
        let (mut frame, mut audio_ms) = (0, 0);
        while frame * 40 < seconds * 1000 {
            let ms = frame * 40;
            while audio_ms <= ms {
                segments.extend(segmenter.push(&audio(audio_ms)).expect("valid audio"));
                audio_ms += 23;
            }
            segments.extend(
                segmenter
                    .push(&video(ms, frame % gop == 0))
                    .expect("valid video"),
            );
            frame += 1;
        }
        segments.extend(segmenter.finish());
        segments
    }

    #[test]
    fn segments_are_cut_at_the_first_keyframe_after_the_target() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), true);
        headers(&mut segmenter);
        // Keyframes every 1.2 s: cuts at 2.4 s, 4.8 s …; 10 s in all.
        let segments = run(&mut segmenter, 10, 30);
        let durations: Vec<u128> = segments.iter().map(|s| s.duration.as_millis()).collect();
        assert_eq!(durations, [2400, 2400, 2400, 2400, 400]);
        assert_eq!(
            segments.iter().map(|s| s.index).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        let total: u128 = durations.iter().sum();
        assert_eq!(total, 10_000, "durations add up to the stream's length");
        assert_eq!(segmenter.codecs(), "avc1.64001f,mp4a.40.2");
    }

    #[test]
    fn every_segment_starts_with_the_tables_and_a_keyframe() {
        let mut segmenter = Segmenter::new(Duration::from_secs(1), true);
        headers(&mut segmenter);
        for segment in run(&mut segmenter, 4, 25) {
            assert_eq!(segment.data.len() % 188, 0);
            assert_eq!(&segment.data[1..3], &[0x40, 0x00], "PAT first");
            assert_eq!(&segment.data[189..191], &[0x50, 0x00], "PMT second");
            // The first video packet has the random access indicator set.
            let video = segment
                .data
                .chunks(188)
                .find(|p| p[1] & 0x1f == 0x01 && p[2] == 0x00)
                .expect("video");
            assert_eq!(video[3] & 0x20, 0x20, "adaptation field present");
            assert_eq!(video[5] & 0x40, 0x40, "random access indicator");
        }
    }

    #[test]
    fn the_end_of_sequence_marker_is_no_frame() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), true);
        headers(&mut segmenter);
        assert_eq!(segmenter.push(&video(0, true)), Ok(None));
        let before = segmenter.open.as_ref().map(|open| open.data.len());
        let end = MediaFrame {
            kind: MediaKind::Video,
            timestamp: 40,
            data: Bytes::from_static(&[0x17, 2, 0, 0, 0]),
        };
        assert_eq!(segmenter.push(&end), Ok(None));
        assert_eq!(
            segmenter.open.as_ref().map(|open| open.data.len()),
            before,
            "nothing was written for it"
        );
    }

    #[test]
    fn the_timeline_unwraps_and_never_runs_back_far() {
        let mut timeline = Timeline::default();
        assert_eq!(timeline.map(u32::MAX - 40), u64::from(u32::MAX - 40));
        assert_eq!(timeline.map(u32::MAX), u64::from(u32::MAX));
        assert_eq!(
            timeline.map(39),
            u64::from(u32::MAX) + 40,
            "across the 32-bit wrap"
        );
        assert_eq!(
            timeline.map(20),
            u64::from(u32::MAX) + 21,
            "a small step back is kept"
        );
        assert_eq!(
            timeline.map(20u32.wrapping_sub(60_000)),
            u64::from(u32::MAX) + 22,
            "a jump back continues"
        );
    }

    #[test]
    fn a_stream_without_further_keyframes_is_still_cut() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), true);
        headers(&mut segmenter);
        let mut segments = Vec::new();
        segments.extend(segmenter.push(&video(0, true)).expect("valid"));
        for i in 1..500u32 {
            segments.extend(segmenter.push(&video(i * 40, false)).expect("valid"));
        }
        assert!(
            segments.len() >= 3,
            "a 20 s GOP still gives segments of at most 6 s"
        );
        assert!(
            segments
                .iter()
                .all(|s| s.duration <= Duration::from_secs(6))
        );
    }

    #[test]
    fn a_negative_composition_offset_never_puts_pts_before_dts() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), true);
        headers(&mut segmenter);
        // Composition offset -40 ms.
        let data = [0x17, 1, 0xff, 0xff, 0xd8, 0, 0, 0, 2, 0x65, 0x88];
        let frame = MediaFrame {
            kind: MediaKind::Video,
            timestamp: 1000,
            data: Bytes::copy_from_slice(&data),
        };
        assert_eq!(segmenter.push(&frame), Ok(None));
        let segment = segmenter.finish().expect("a segment");
        let mut reader =
            mpeg2ts::pes::PesPacketReader::new(mpeg2ts::ts::TsPacketReader::new(&segment.data[..]));
        use mpeg2ts::pes::ReadPesPacket;
        let pes = reader.read_pes_packet().expect("valid").expect("a PES");
        let (pts, dts) = (
            pes.header.pts.map(|t| t.as_u64()),
            pes.header.dts.map(|t| t.as_u64()),
        );
        assert!(
            dts.is_none() || dts <= pts,
            "PTS {pts:?} before DTS {dts:?}"
        );
    }

    #[test]
    fn video_that_appears_after_audio_closes_the_audio_only_segment() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), false);
        let aac = MediaFrame {
            kind: MediaKind::Audio,
            timestamp: 0,
            data: Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
        };
        assert_eq!(segmenter.push(&aac), Ok(None));
        assert_eq!(segmenter.push(&audio(0)), Ok(None));
        let avc = MediaFrame {
            kind: MediaKind::Video,
            timestamp: 23,
            data: Bytes::from_static(&AVC_HEADER),
        };
        let closed = segmenter
            .push(&avc)
            .expect("valid")
            .expect("the audio-only segment");
        assert_eq!(closed.index, 0);
        assert_eq!(
            segmenter.push(&video(40, true)),
            Ok(None),
            "the next segment opens at a keyframe"
        );
    }

    #[test]
    fn video_before_the_first_keyframe_is_dropped() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), true);
        headers(&mut segmenter);
        assert_eq!(segmenter.push(&video(0, false)), Ok(None));
        assert!(
            segmenter.finish().is_none(),
            "no segment without a keyframe"
        );
    }

    #[test]
    fn audio_only_streams_are_cut_by_time() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), false);
        let aac = MediaFrame {
            kind: MediaKind::Audio,
            timestamp: 0,
            data: Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
        };
        assert_eq!(segmenter.push(&aac), Ok(None));
        let mut segments = Vec::new();
        for i in 0..300u32 {
            segments.extend(segmenter.push(&audio(i * 23)).expect("valid"));
        }
        segments.extend(segmenter.finish());
        assert!(segments.len() >= 3);
        assert!(
            segments[..segments.len() - 1]
                .iter()
                .all(|s| (2000..2023).contains(&s.duration.as_millis()))
        );
    }

    #[test]
    fn malformed_frames_are_errors_and_the_stream_goes_on() {
        let mut segmenter = Segmenter::new(Duration::from_secs(2), true);
        assert_eq!(
            segmenter.push(&video(0, true)),
            Err(CodecError::NoConfiguration("video"))
        );
        headers(&mut segmenter);
        let broken = MediaFrame {
            kind: MediaKind::Video,
            timestamp: 40,
            data: Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 9, 1]),
        };
        assert!(segmenter.push(&broken).is_err());
        let mp3 = MediaFrame {
            kind: MediaKind::Audio,
            timestamp: 40,
            data: Bytes::from_static(&[0x2f, 1, 0]),
        };
        assert!(matches!(
            segmenter.push(&mp3),
            Err(CodecError::Unsupported(_))
        ));
        assert_eq!(segmenter.push(&video(80, true)), Ok(None));
        assert!(segmenter.finish().is_some());
    }
}
