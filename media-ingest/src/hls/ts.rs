//! An MPEG-TS writer for one program of H.264 video and AAC audio (ISO/IEC 13818-1): PAT and
//! PMT at the start of every segment, one PES per access unit, PCR on the video PID (or the
//! audio PID without video), continuity counters per PID, stuffing in the adaptation field.

const PACKET: usize = 188;
const PAT_PID: u16 = 0x0000;
const PMT_PID: u16 = 0x1000;
pub(crate) const VIDEO_PID: u16 = 0x0100;
pub(crate) const AUDIO_PID: u16 = 0x0101;
const STREAM_TYPE_H264: u8 = 0x1b;
const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;
const STREAM_ID_VIDEO: u8 = 0xe0;
const STREAM_ID_AUDIO: u8 = 0xc0;
/// 33-bit PTS/DTS wrap at 90 kHz.
const TIMESTAMP_MASK: u64 = (1 << 33) - 1;

/// One PES to write: an access unit with its timestamps in 90 kHz ticks.
pub(crate) struct AccessUnit<'a> {
    pub(crate) pid: u16,
    pub(crate) pts: u64,
    pub(crate) dts: u64,
    pub(crate) keyframe: bool,
    pub(crate) data: &'a [u8],
}

/// Writes TS packets into a caller's buffer.
#[derive(Debug)]
pub(crate) struct TsWriter {
    has_video: bool,
    has_audio: bool,
    counters: [u8; 4],
}

impl TsWriter {
    pub(crate) fn new(has_video: bool, has_audio: bool) -> Self {
        Self {
            has_video,
            has_audio,
            counters: [0; 4],
        }
    }

    fn pcr_pid(&self) -> u16 {
        if self.has_video { VIDEO_PID } else { AUDIO_PID }
    }

    fn next_counter(&mut self, pid: u16) -> u8 {
        let slot = match pid {
            PAT_PID => 0,
            PMT_PID => 1,
            VIDEO_PID => 2,
            _ => 3,
        };
        let counter = self.counters[slot];
        self.counters[slot] = (counter + 1) & 0x0f;
        counter
    }

    /// Writes the PAT and the PMT (each segment starts with them so it decodes on its own).
    pub(crate) fn write_tables(&mut self, out: &mut Vec<u8>) {
        // program 1 → PMT PID
        let pat = [0x00, 0x01, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8];
        let section = psi_section(0x00, 0x0001, &pat);
        self.write_section(PAT_PID, &section, out);

        let pcr = self.pcr_pid();
        let mut pmt = vec![0xe0 | (pcr >> 8) as u8, pcr as u8, 0xf0, 0x00];
        for (present, stream_type, pid) in [
            (self.has_video, STREAM_TYPE_H264, VIDEO_PID),
            (self.has_audio, STREAM_TYPE_AAC_ADTS, AUDIO_PID),
        ] {
            if present {
                pmt.extend_from_slice(&[
                    stream_type,
                    0xe0 | (pid >> 8) as u8,
                    pid as u8,
                    0xf0,
                    0x00,
                ]);
            }
        }
        let section = psi_section(0x02, 0x0001, &pmt);
        self.write_section(PMT_PID, &section, out);
    }

    fn write_section(&mut self, pid: u16, section: &[u8], out: &mut Vec<u8>) {
        let counter = self.next_counter(pid);
        let start = out.len();
        out.extend_from_slice(&[
            0x47,
            0x40 | (pid >> 8) as u8,
            pid as u8,
            0x10 | counter,
            0x00,
        ]);
        out.extend_from_slice(section);
        out.resize(start + PACKET, 0xff);
    }

    /// Writes one access unit as a PES split over TS packets.
    pub(crate) fn write_access_unit(&mut self, unit: &AccessUnit<'_>, out: &mut Vec<u8>) {
        let video = unit.pid == VIDEO_PID;
        let pes_header = pes_header(
            if video {
                STREAM_ID_VIDEO
            } else {
                STREAM_ID_AUDIO
            },
            unit,
            video,
        );
        let with_pcr = unit.pid == self.pcr_pid();
        let mut remaining = unit.data;
        let mut first = true;
        while first || !remaining.is_empty() {
            let counter = self.next_counter(unit.pid);
            let start = out.len();
            out.extend_from_slice(&[
                0x47,
                if first { 0x40 } else { 0x00 } | (unit.pid >> 8) as u8,
                unit.pid as u8,
                0,
            ]);
            // The adaptation field: PCR and random access on a PES start, stuffing at the end.
            let mut adaptation = Vec::new();
            if first && (with_pcr || unit.keyframe) {
                let flags =
                    if unit.keyframe { 0x40 } else { 0x00 } | if with_pcr { 0x10 } else { 0x00 };
                adaptation.push(flags);
                if with_pcr {
                    // The PCR runs ahead of nothing: a little behind the decode time.
                    adaptation.extend_from_slice(&pcr_bytes(unit.dts.saturating_sub(9000)));
                }
            }
            let header_len = if first { pes_header.len() } else { 0 };
            let adaptation_len = if adaptation.is_empty() {
                0
            } else {
                1 + adaptation.len()
            };
            let room = PACKET - 4 - adaptation_len - header_len;
            let take = remaining.len().min(room);
            let stuffing = room - take;
            if stuffing > 0 {
                if adaptation.is_empty() {
                    // One byte of stuffing is the length byte alone; more adds the flags byte.
                    if stuffing >= 2 {
                        adaptation.push(0x00);
                    }
                    adaptation.extend(std::iter::repeat_n(0xff, stuffing.saturating_sub(2)));
                } else {
                    adaptation.extend(std::iter::repeat_n(0xff, stuffing));
                }
            }
            let has_adaptation = !adaptation.is_empty() || stuffing == 1;
            out[start + 3] = if has_adaptation { 0x30 } else { 0x10 } | counter;
            if has_adaptation {
                // The length counts the bytes after itself.
                out.push(adaptation.len() as u8);
                out.extend_from_slice(&adaptation);
            }
            if first {
                out.extend_from_slice(&pes_header);
            }
            out.extend_from_slice(&remaining[..take]);
            remaining = &remaining[take..];
            first = false;
            debug_assert_eq!(out.len() - start, PACKET);
        }
    }
}

fn pes_header(stream_id: u8, unit: &AccessUnit<'_>, video: bool) -> Vec<u8> {
    let with_dts = unit.dts != unit.pts;
    let header_data = if with_dts { 10 } else { 5 };
    let mut header = vec![0, 0, 1, stream_id];
    // Video PES may leave the length unbounded (0); audio gives it when it fits 16 bits.
    let length = 3 + header_data + unit.data.len();
    let length = if video || length > 0xffff { 0 } else { length };
    header.extend_from_slice(&(length as u16).to_be_bytes());
    header.push(0x80 | if video { 0x04 } else { 0x00 }); // marker bits; data alignment for video
    header.push(if with_dts { 0xc0 } else { 0x80 });
    header.push(header_data as u8);
    header.extend_from_slice(&timestamp_bytes(if with_dts { 0x3 } else { 0x2 }, unit.pts));
    if with_dts {
        header.extend_from_slice(&timestamp_bytes(0x1, unit.dts));
    }
    header
}

/// A 33-bit timestamp in the 5-byte PES form, with its 4-bit prefix and marker bits.
fn timestamp_bytes(prefix: u8, timestamp: u64) -> [u8; 5] {
    let t = timestamp & TIMESTAMP_MASK;
    [
        prefix << 4 | ((t >> 29) as u8 & 0x0e) | 1,
        (t >> 22) as u8,
        ((t >> 14) as u8 & 0xfe) | 1,
        (t >> 7) as u8,
        ((t << 1) as u8 & 0xfe) | 1,
    ]
}

/// A PCR for `base` (90 kHz ticks) with a zero 27 MHz extension.
fn pcr_bytes(base: u64) -> [u8; 6] {
    let b = base & TIMESTAMP_MASK;
    [
        (b >> 25) as u8,
        (b >> 17) as u8,
        (b >> 9) as u8,
        (b >> 1) as u8,
        ((b & 1) as u8) << 7 | 0x7e,
        0x00,
    ]
}

/// A complete PSI section (table id … CRC) with `body` after the five fixed header bytes.
fn psi_section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
    // section_length counts from after itself: 5 header bytes, the body and the CRC.
    let length = 5 + body.len() + 4;
    let mut section = vec![table_id, 0xb0 | (length >> 8) as u8, length as u8];
    section.extend_from_slice(&id.to_be_bytes());
    section.extend_from_slice(&[0xc1, 0x00, 0x00]); // version 0, current; section 0 of 0
    section.extend_from_slice(body);
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    section
}

/// CRC-32/MPEG-2: polynomial 0x04C11DB7, initial 0xFFFFFFFF, no reflection, no final XOR.
fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in bytes {
        crc ^= u32::from(*byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                crc << 1 ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests_ts {
    use super::*;
    use mpeg2ts::{
        pes::{PesPacketReader, ReadPesPacket},
        ts::{ReadTsPacket, TsPacketReader, TsPayload},
    };

    #[test]
    fn the_crc_matches_the_standard_check_value() {
        // CRC-32/MPEG-2 of "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_e6e7);
    }

    fn segment() -> Vec<u8> {
        let mut writer = TsWriter::new(true, true);
        let mut out = Vec::new();
        writer.write_tables(&mut out);
        let big = vec![0x11; 1000];
        let small = [0x22; 183 - 14];
        for (i, data) in [&big[..], &small[..], &[0x33][..]].into_iter().enumerate() {
            let dts = 126_000 + i as u64 * 3600;
            let unit = AccessUnit {
                pid: VIDEO_PID,
                pts: dts + 3600,
                dts,
                keyframe: i == 0,
                data,
            };
            writer.write_access_unit(&unit, &mut out);
        }
        let audio = AccessUnit {
            pid: AUDIO_PID,
            pts: 126_000,
            dts: 126_000,
            keyframe: false,
            data: &[0x44; 300],
        };
        writer.write_access_unit(&audio, &mut out);
        out
    }

    #[test]
    fn packets_are_whole_and_decode_with_an_independent_reader() {
        let bytes = segment();
        assert_eq!(bytes.len() % PACKET, 0);
        let mut reader = TsPacketReader::new(&bytes[..]);
        let (mut pat, mut pmt, mut counters) = (false, None, std::collections::HashMap::new());
        while let Some(packet) = reader.read_ts_packet().expect("a valid packet") {
            let pid = packet.header.pid.as_u16();
            let counter = packet.header.continuity_counter.as_u8();
            if let Some(previous) = counters.insert(pid, counter) {
                assert_eq!(counter, (previous + 1) & 0x0f, "continuity on PID {pid:#x}");
            }
            match packet.payload {
                Some(TsPayload::Pat(table)) => {
                    pat = true;
                    assert_eq!(table.table[0].program_map_pid.as_u16(), PMT_PID);
                }
                Some(TsPayload::Pmt(table)) => pmt = Some(table),
                _ => {}
            }
        }
        assert!(pat, "no PAT");
        let pmt = pmt.expect("a PMT");
        assert_eq!(pmt.pcr_pid.map(|p| p.as_u16()), Some(VIDEO_PID));
        let pids: Vec<u16> = pmt
            .es_info
            .iter()
            .map(|es| es.elementary_pid.as_u16())
            .collect();
        assert_eq!(pids, [VIDEO_PID, AUDIO_PID]);
    }

    #[test]
    fn pes_packets_carry_their_data_and_timestamps() {
        let bytes = segment();
        let mut reader = PesPacketReader::new(TsPacketReader::new(&bytes[..]));
        let mut seen = Vec::new();
        while let Some(pes) = reader.read_pes_packet().expect("a valid PES") {
            let pts = pes.header.pts.map(|t| t.as_u64());
            let dts = pes.header.dts.map(|t| t.as_u64());
            seen.push((
                pes.header.stream_id.as_u8(),
                pes.data.len(),
                pts,
                dts,
                pes.data.first().copied(),
            ));
        }
        // The reader completes an unbounded (video) PES only when the next one on its PID
        // starts, so compare per stream, in order within each.
        seen.sort_by_key(|(stream_id, ..)| std::cmp::Reverse(*stream_id));
        assert_eq!(
            seen,
            vec![
                (
                    STREAM_ID_VIDEO,
                    1000,
                    Some(129_600),
                    Some(126_000),
                    Some(0x11)
                ),
                (
                    STREAM_ID_VIDEO,
                    169,
                    Some(133_200),
                    Some(129_600),
                    Some(0x22)
                ),
                (STREAM_ID_VIDEO, 1, Some(136_800), Some(133_200), Some(0x33)),
                (STREAM_ID_AUDIO, 300, Some(126_000), None, Some(0x44)),
            ]
        );
    }

    #[test]
    fn timestamps_wrap_at_33_bits() {
        let bytes = timestamp_bytes(0x2, (1 << 33) + 5);
        assert_eq!(bytes, timestamp_bytes(0x2, 5));
        assert_eq!(bytes[0] & 0xf1, 0x21);
    }
}
