//! The playlists of one stream: a live sliding window, a VOD list of every segment, and a
//! master playlist naming the rendition. Rendered with m3u8-rs.

use m3u8_rs::{
    MasterPlaylist, MediaPlaylist, MediaPlaylistType, MediaSegment, Resolution, VariantStream,
};
use std::{collections::VecDeque, time::Duration};

#[derive(Debug, Clone)]
struct Entry {
    index: u64,
    uri: String,
    duration: Duration,
}

impl Entry {
    fn segment(&self) -> MediaSegment {
        MediaSegment {
            uri: self.uri.clone(),
            duration: self.duration.as_secs_f32(),
            ..MediaSegment::default()
        }
    }
}

pub(crate) struct Playlists {
    window: usize,
    live: VecDeque<Entry>,
    all: Vec<Entry>,
    target: u64,
}

impl Playlists {
    /// `window`: segments in the live playlist; `target`: the configured segment duration.
    pub(crate) fn new(window: usize, target: Duration) -> Self {
        Self {
            window,
            live: VecDeque::new(),
            all: Vec::new(),
            target: target.as_secs_f64().ceil() as u64,
        }
    }

    /// Adds a segment; returns the URIs that left the live window.
    pub(crate) fn push(&mut self, index: u64, uri: String, duration: Duration) -> Vec<String> {
        // EXT-X-TARGETDURATION is the longest segment, rounded up (RFC 8216 §4.3.3.1).
        self.target = self
            .target
            .max(duration.as_secs_f64().round() as u64)
            .max(1);
        let entry = Entry {
            index,
            uri,
            duration,
        };
        self.all.push(entry.clone());
        self.live.push_back(entry);
        let mut evicted = Vec::new();
        while self.live.len() > self.window {
            evicted.extend(self.live.pop_front().map(|entry| entry.uri));
        }
        evicted
    }

    /// The live playlist; with `ended`, it gets EXT-X-ENDLIST so players stop at its end.
    pub(crate) fn live(&self, ended: bool) -> Vec<u8> {
        let playlist = MediaPlaylist {
            version: Some(3),
            target_duration: self.target,
            media_sequence: self.live.front().map_or(0, |entry| entry.index),
            segments: self.live.iter().map(Entry::segment).collect(),
            end_list: ended,
            ..MediaPlaylist::default()
        };
        render(|out| playlist.write_to(out))
    }

    /// Every segment so far: an EVENT playlist while live, VOD with EXT-X-ENDLIST once `ended`.
    pub(crate) fn vod(&self, ended: bool) -> Vec<u8> {
        let playlist = MediaPlaylist {
            version: Some(3),
            target_duration: self.target,
            media_sequence: self.all.first().map_or(0, |entry| entry.index),
            segments: self.all.iter().map(Entry::segment).collect(),
            end_list: ended,
            playlist_type: Some(if ended {
                MediaPlaylistType::Vod
            } else {
                MediaPlaylistType::Event
            }),
            ..MediaPlaylist::default()
        };
        render(|out| playlist.write_to(out))
    }

    /// Total duration of every segment.
    pub(crate) fn duration(&self) -> Duration {
        self.all.iter().map(|entry| entry.duration).sum()
    }
}

/// A master playlist with one rendition.
pub(crate) fn master(
    uri: &str,
    bandwidth: u64,
    codecs: &str,
    resolution: Option<(u64, u64)>,
) -> Vec<u8> {
    let variant = VariantStream {
        uri: uri.to_owned(),
        bandwidth,
        codecs: (!codecs.is_empty()).then(|| codecs.to_owned()),
        resolution: resolution.map(|(width, height)| Resolution { width, height }),
        ..VariantStream::default()
    };
    let playlist = MasterPlaylist {
        version: Some(3),
        variants: vec![variant],
        ..MasterPlaylist::default()
    };
    render(|out| playlist.write_to(out))
}

fn render(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write(&mut out);
    out
}

#[cfg(test)]
mod tests_playlist {
    use super::*;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("UTF-8")
    }

    #[test]
    fn the_live_window_slides_and_the_vod_keeps_everything() {
        let mut playlists = Playlists::new(3, Duration::from_secs(2));
        let mut evicted = Vec::new();
        for index in 0..5 {
            evicted.extend(playlists.push(
                index,
                format!("{index}.ts"),
                Duration::from_millis(2400),
            ));
        }
        assert_eq!(evicted, ["0.ts", "1.ts"]);
        let live = text(playlists.live(false));
        assert!(live.contains("#EXT-X-MEDIA-SEQUENCE:2"), "{live}");
        assert!(
            live.contains("#EXT-X-TARGETDURATION:2") && !live.contains("ENDLIST"),
            "{live}"
        );
        assert_eq!(live.matches(".ts").count(), 3);
        let parsed = m3u8_rs::parse_media_playlist_res(live.as_bytes()).expect("valid");
        assert_eq!(
            parsed.segments.first().map(|s| s.uri.as_str()),
            Some("2.ts")
        );

        let vod = text(playlists.vod(true));
        assert!(
            vod.contains("#EXT-X-PLAYLIST-TYPE:VOD") && vod.contains("#EXT-X-ENDLIST"),
            "{vod}"
        );
        assert_eq!(vod.matches(".ts").count(), 5);
        assert!(text(playlists.vod(false)).contains("#EXT-X-PLAYLIST-TYPE:EVENT"));
        assert_eq!(playlists.duration(), Duration::from_secs(12));
    }

    #[test]
    fn the_target_duration_covers_the_longest_segment() {
        let mut playlists = Playlists::new(10, Duration::from_secs(2));
        playlists.push(0, "0.ts".into(), Duration::from_millis(4600));
        assert!(text(playlists.live(false)).contains("#EXT-X-TARGETDURATION:5"));
    }

    #[test]
    fn the_master_names_the_rendition() {
        let master = text(master(
            "live.m3u8",
            2_500_000,
            "avc1.64001f,mp4a.40.2",
            Some((640, 360)),
        ));
        let parsed = m3u8_rs::parse_master_playlist_res(master.as_bytes()).expect("valid");
        let variant = &parsed.variants[0];
        assert_eq!(
            (variant.uri.as_str(), variant.bandwidth),
            ("live.m3u8", 2_500_000)
        );
        assert_eq!(variant.codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(
            variant.resolution,
            Some(Resolution {
                width: 640,
                height: 360
            })
        );
    }
}
