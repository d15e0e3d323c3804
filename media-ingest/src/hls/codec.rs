//! From FLV tag bodies to what MPEG-TS carries: H.264 in Annex B byte-stream format (with
//! parameter sets before each keyframe) and AAC in ADTS frames. Every read is bounds-checked;
//! a malformed tag is a [`CodecError`], never a panic.

/// Why a tag could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The tag ended before a field it announces.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// The tag is of a codec HLS packaging does not carry (only H.264 and AAC).
    #[error("unsupported codec: {0}")]
    Unsupported(&'static str),
    /// A frame came before its decoder configuration.
    #[error("{0} frame before its sequence header")]
    NoConfiguration(&'static str),
    /// A value is out of range.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// An access unit delimiter NAL unit (type 9, any slice type): HLS players expect one per
/// access unit in MPEG-TS.
const ACCESS_UNIT_DELIMITER: [u8; 6] = [0, 0, 0, 1, 0x09, 0xf0];

fn take<'a>(bytes: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
    if bytes.len() < n {
        return Err(CodecError::Truncated(what));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn take_u8(bytes: &mut &[u8], what: &'static str) -> Result<u8, CodecError> {
    Ok(take(bytes, 1, what)?[0])
}

fn take_u16(bytes: &mut &[u8], what: &'static str) -> Result<usize, CodecError> {
    let b = take(bytes, 2, what)?;
    Ok(usize::from(b[0]) << 8 | usize::from(b[1]))
}

/// An H.264 decoder configuration (AVCDecoderConfigurationRecord).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AvcConfig {
    nal_length_size: usize,
    /// SPS and PPS, each already prefixed with a start code.
    parameter_sets: Vec<u8>,
    /// `avc1.PPCCLL` for the master playlist.
    pub(crate) codec: String,
}

impl AvcConfig {
    /// Parses the record carried by an AVC sequence header tag (after the 5-byte tag header).
    pub(crate) fn parse(mut record: &[u8]) -> Result<Self, CodecError> {
        let header = take(&mut record, 5, "AVC configuration")?;
        let codec = format!("avc1.{:02x}{:02x}{:02x}", header[1], header[2], header[3]);
        let nal_length_size = usize::from(header[4] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(CodecError::Invalid("NAL length size"));
        }
        let mut parameter_sets = Vec::new();
        let sps_count = take_u8(&mut record, "SPS count")? & 0x1f;
        for _ in 0..sps_count {
            let length = take_u16(&mut record, "SPS length")?;
            parameter_sets.extend_from_slice(&START_CODE);
            parameter_sets.extend_from_slice(take(&mut record, length, "SPS")?);
        }
        let pps_count = take_u8(&mut record, "PPS count")?;
        for _ in 0..pps_count {
            let length = take_u16(&mut record, "PPS length")?;
            parameter_sets.extend_from_slice(&START_CODE);
            parameter_sets.extend_from_slice(take(&mut record, length, "PPS")?);
        }
        Ok(Self {
            nal_length_size,
            parameter_sets,
            codec,
        })
    }

    /// Appends one access unit in Annex B form to `out`: a delimiter, the parameter sets when
    /// `keyframe`, then each NAL unit (delimiters in the input are dropped: there is one).
    pub(crate) fn annex_b(
        &self,
        mut nalus: &[u8],
        keyframe: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        out.extend_from_slice(&ACCESS_UNIT_DELIMITER);
        if keyframe {
            out.extend_from_slice(&self.parameter_sets);
        }
        while !nalus.is_empty() {
            let length = take(&mut nalus, self.nal_length_size, "NAL unit length")?
                .iter()
                .fold(0usize, |length, byte| length << 8 | usize::from(*byte));
            let nalu = take(&mut nalus, length, "NAL unit")?;
            if nalu.first().is_some_and(|header| header & 0x1f == 9) {
                continue;
            }
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nalu);
        }
        Ok(())
    }
}

/// An FLV video tag body, split into its parts.
pub(crate) struct VideoTag<'a> {
    pub(crate) keyframe: bool,
    pub(crate) sequence_header: bool,
    /// AVCPacketType 2: the encoder's end-of-sequence marker, which carries no picture.
    pub(crate) end_of_sequence: bool,
    /// Composition time offset (PTS - DTS), in milliseconds.
    pub(crate) composition_offset: i32,
    pub(crate) payload: &'a [u8],
}

impl<'a> VideoTag<'a> {
    pub(crate) fn parse(mut tag: &'a [u8]) -> Result<Self, CodecError> {
        let header = take(&mut tag, 5, "video tag header")?;
        if header[0] & 0x0f != 7 {
            return Err(CodecError::Unsupported("video other than H.264"));
        }
        let raw = i32::from(header[2]) << 16 | i32::from(header[3]) << 8 | i32::from(header[4]);
        // A signed 24-bit value.
        let composition_offset = if raw & 0x0080_0000 != 0 {
            raw - 0x0100_0000
        } else {
            raw
        };
        Ok(Self {
            keyframe: header[0] >> 4 == 1,
            sequence_header: header[1] == 0,
            end_of_sequence: header[1] == 2,
            composition_offset,
            payload: tag,
        })
    }
}

/// An AAC decoder configuration (AudioSpecificConfig), enough to write ADTS headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AacConfig {
    object_type: u8,
    frequency_index: u8,
    channels: u8,
}

/// The sampling frequencies of the 4-bit index (ISO/IEC 14496-3, 1.6.3.4).
const FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AacConfig {
    /// Parses the AudioSpecificConfig of an AAC sequence header (after the 2-byte tag header).
    pub(crate) fn parse(config: &[u8]) -> Result<Self, CodecError> {
        let [first, second, ..] = *config else {
            return Err(CodecError::Truncated("AudioSpecificConfig"));
        };
        let object_type = first >> 3;
        let frequency_index = (first & 0x07) << 1 | second >> 7;
        let channels = (second >> 3) & 0x0f;
        // ADTS has 2 bits for the profile (object type - 1) and no escape for the frequency.
        if !(1..=4).contains(&object_type) {
            return Err(CodecError::Unsupported(
                "AAC object type outside 1..=4 (ADTS cannot carry it)",
            ));
        }
        if usize::from(frequency_index) >= FREQUENCIES.len() {
            return Err(CodecError::Invalid("AAC sampling frequency index"));
        }
        if channels == 0 || channels > 7 {
            return Err(CodecError::Invalid("AAC channel configuration"));
        }
        Ok(Self {
            object_type,
            frequency_index,
            channels,
        })
    }

    /// `mp4a.40.N` for the master playlist.
    pub(crate) fn codec(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// Appends one ADTS frame (7-byte header, no CRC) carrying `raw` to `out`.
    pub(crate) fn adts(&self, raw: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let length = raw.len() + 7;
        if length > 0x1fff {
            return Err(CodecError::Invalid("AAC frame length (over 8 KiB)"));
        }
        let profile = self.object_type - 1;
        // The length fits 13 bits (checked above), so these casts keep every bit they need.
        let length = length as u16;
        out.extend_from_slice(&[
            0xff,
            0xf1,
            profile << 6 | self.frequency_index << 2 | self.channels >> 2,
            (self.channels & 0x03) << 6 | (length >> 11) as u8,
            (length >> 3) as u8,
            ((length & 0x07) as u8) << 5 | 0x1f,
            0xfc,
        ]);
        out.extend_from_slice(raw);
        Ok(())
    }
}

#[cfg(test)]
mod tests_codec {
    use super::*;

    /// A record with one 4-byte SPS and one 2-byte PPS, 4-byte NAL lengths (High, level 3.1).
    const RECORD: [u8; 17] = [
        1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 1, 2, 3, 1, 0, 2, 0x68, 9,
    ];

    #[test]
    fn avc_frames_become_annex_b_with_parameter_sets_on_keyframes() {
        let config = AvcConfig::parse(&RECORD).expect("valid");
        assert_eq!(config.codec, "avc1.64001f");
        let nalus = [
            0, 0, 0, 3, 0x65, 0xaa, 0xbb, 0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 1, 0x06,
        ];
        let mut key = Vec::new();
        config.annex_b(&nalus, true, &mut key).expect("converted");
        let expected: Vec<u8> = [
            &ACCESS_UNIT_DELIMITER[..],
            &[0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 0, 1, 0x68, 9],
            &[0, 0, 0, 1, 0x65, 0xaa, 0xbb],
            &[0, 0, 0, 1, 0x06],
        ]
        .concat();
        assert_eq!(key, expected);
        let mut delta = Vec::new();
        config
            .annex_b(&nalus[..7], false, &mut delta)
            .expect("converted");
        assert_eq!(
            delta,
            [&ACCESS_UNIT_DELIMITER[..], &[0, 0, 0, 1, 0x65, 0xaa, 0xbb]].concat()
        );
    }

    #[test]
    fn malformed_avc_is_an_error_at_every_cut() {
        for cut in 0..RECORD.len() {
            assert!(AvcConfig::parse(&RECORD[..cut]).is_err(), "cut at {cut}");
        }
        let config = AvcConfig::parse(&RECORD).expect("valid");
        let mut out = Vec::new();
        assert_eq!(
            config.annex_b(&[0, 0, 0, 9, 0x65], false, &mut out),
            Err(CodecError::Truncated("NAL unit"))
        );
        assert_eq!(
            config.annex_b(&[0, 0], false, &mut out),
            Err(CodecError::Truncated("NAL unit length"))
        );
    }

    #[test]
    fn video_tags_carry_a_signed_composition_offset() {
        let tag = VideoTag::parse(&[0x17, 1, 0xff, 0xff, 0xd8, 9]).expect("valid");
        assert!(tag.keyframe && !tag.sequence_header);
        assert_eq!(tag.composition_offset, -40);
        assert_eq!(tag.payload, [9]);
        assert!(matches!(
            VideoTag::parse(&[0x12, 1, 0, 0, 0]),
            Err(CodecError::Unsupported(_))
        ));
    }

    #[test]
    fn aac_frames_get_an_adts_header() {
        // AAC-LC (2), 44.1 kHz (index 4), stereo: 0x12 0x10.
        let config = AacConfig::parse(&[0x12, 0x10]).expect("valid");
        assert_eq!(config.codec(), "mp4a.40.2");
        assert_eq!(FREQUENCIES[usize::from(config.frequency_index)], 44_100);
        let mut out = Vec::new();
        config.adts(&[0xaa; 10], &mut out).expect("framed");
        // Profile 1 (LC), index 4, 2 channels, length 17.
        assert_eq!(&out[..7], &[0xff, 0xf1, 0x50, 0x80, 0x02, 0x3f, 0xfc]);
        assert_eq!(out.len(), 17);
        assert!(AacConfig::parse(&[0x12]).is_err());
        assert!(
            AacConfig::parse(&[0xfa, 0x10]).is_err(),
            "object type 31 (escape)"
        );
        assert!(
            AacConfig::parse(&[0x17, 0x90]).is_err(),
            "frequency index 15"
        );
        assert!(config.adts(&[0; 9000], &mut out).is_err());
    }
}
