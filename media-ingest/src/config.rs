use crate::ConfigError;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// How the RTMP server listens, what it tolerates, and how it packages HLS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestConfig {
    /// Where the RTMP server listens. Default `0.0.0.0:1935`, RTMP's registered port.
    pub rtmp_listen: SocketAddr,
    /// How long a client may take to complete the RTMP handshake. Default 10 s; a connection
    /// that sends a few bytes and stalls (slowloris) is closed after this.
    pub handshake_timeout: Duration,
    /// How long a publisher may send nothing before it is dropped. Default 30 s.
    pub idle_timeout: Duration,
    /// How long the key verifier may take before the publisher is refused. Default 10 s, below
    /// the coordinator streaming server's own 20 s.
    pub verify_timeout: Duration,
    /// Concurrent RTMP connections (publishers and players). Default 1,024.
    pub max_connections: usize,
    /// The largest RTMP message accepted, checked before the bytes reach the RTMP parser.
    /// Default 4 MiB: a 4K keyframe at high bitrate fits, a hostile length does not.
    pub max_message_bytes: usize,
    /// Frames of a stream held for its consumers (players, the HLS packager), shared by all of
    /// them. A consumer that falls further behind skips to the next keyframe; the publisher never
    /// waits. Default 1,024 (about 15 s of 25 fps video with AAC audio).
    pub stream_ring_frames: usize,
    /// The bytes of the current group of pictures kept so that a new player starts at once, at
    /// a keyframe. Default 8 MiB (about 30 s of a 2 Mbps stream); a longer GOP is not cached.
    pub gop_cache_bytes: usize,
    /// HLS packaging.
    pub hls: HlsConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            rtmp_listen: SocketAddr::from(([0, 0, 0, 0], 1935)),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            verify_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_message_bytes: 4 << 20,
            stream_ring_frames: 1024,
            gop_cache_bytes: 8 << 20,
            hls: HlsConfig::default(),
        }
    }
}

/// Where and how HLS is written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HlsConfig {
    /// The root under which each stream's playlists and segments are written. Default
    /// `./data/hls`.
    pub output_dir: PathBuf,
    /// Segments are cut at the first keyframe at or after this duration. Default 2 s (Open360's
    /// ffmpeg settings).
    pub target_segment_duration: Duration,
    /// Segments listed in the live playlist. Default 10 (Open360's live window); older segments
    /// are deleted unless a VOD playlist keeps them.
    pub live_window: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            output_dir: PathBuf::from("./data/hls"),
            target_segment_duration: Duration::from_secs(2),
            live_window: 10,
        }
    }
}

fn ensure(
    ok: bool,
    setting: &'static str,
    requirement: &'static str,
    value: impl std::fmt::Debug,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            setting,
            requirement,
            value: format!("{value:?}"),
        })
    }
}

impl IngestConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let seconds = |d: Duration| !d.is_zero() && d <= Duration::from_secs(3600);
        ensure(
            seconds(self.handshake_timeout),
            "handshake_timeout",
            "between 0 and 1 h",
            self.handshake_timeout,
        )?;
        ensure(
            seconds(self.idle_timeout),
            "idle_timeout",
            "between 0 and 1 h",
            self.idle_timeout,
        )?;
        ensure(
            seconds(self.verify_timeout),
            "verify_timeout",
            "between 0 and 1 h",
            self.verify_timeout,
        )?;
        ensure(
            self.max_connections > 0,
            "max_connections",
            "at least 1",
            self.max_connections,
        )?;
        // Below 64 KiB an ordinary keyframe would be refused; above 64 MiB one hostile length
        // could pin that much memory per connection.
        let message = (64 << 10)..=(64 << 20);
        ensure(
            message.contains(&self.max_message_bytes),
            "max_message_bytes",
            "between 64 KiB and 64 MiB",
            self.max_message_bytes,
        )?;
        ensure(
            (16..=65_536).contains(&self.stream_ring_frames),
            "stream_ring_frames",
            "between 16 and 65,536",
            self.stream_ring_frames,
        )?;
        ensure(
            self.gop_cache_bytes <= 256 << 20,
            "gop_cache_bytes",
            "at most 256 MiB",
            self.gop_cache_bytes,
        )?;
        self.hls.validate()
    }
}

impl HlsConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let target = self.target_segment_duration;
        ensure(
            target >= Duration::from_millis(500) && target <= Duration::from_secs(60),
            "hls.target_segment_duration",
            "between 0.5 s and 60 s",
            target,
        )?;
        // RFC 8216 §6.3.3: a client starts no later than three target durations from the end,
        // so a live playlist needs at least three segments.
        ensure(
            self.live_window >= 3,
            "hls.live_window",
            "at least 3 segments",
            self.live_window,
        )?;
        ensure(
            !self.output_dir.as_os_str().is_empty(),
            "hls.output_dir",
            "a directory",
            &self.output_dir,
        )
    }
}

#[cfg(test)]
mod validation {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_match_the_originals() {
        let config = IngestConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.rtmp_listen.port(), 1935);
        assert_eq!(config.hls.target_segment_duration, Duration::from_secs(2));
        assert_eq!(config.hls.live_window, 10);
    }

    /// A setting's name, and a change that makes it invalid.
    type Breakage = (&'static str, fn(&mut IngestConfig));

    #[test]
    fn each_bound_is_enforced() {
        let broken: &[Breakage] = &[
            ("handshake_timeout", |c| {
                c.handshake_timeout = Duration::ZERO
            }),
            ("verify_timeout", |c| {
                c.verify_timeout = Duration::from_secs(7200)
            }),
            ("max_connections", |c| c.max_connections = 0),
            ("max_message_bytes", |c| c.max_message_bytes = 1000),
            ("max_message_bytes", |c| c.max_message_bytes = 1 << 30),
            ("stream_ring_frames", |c| c.stream_ring_frames = 1),
            ("gop_cache_bytes", |c| c.gop_cache_bytes = 1 << 30),
            ("hls.target_segment_duration", |c| {
                c.hls.target_segment_duration = Duration::from_millis(100)
            }),
            ("hls.live_window", |c| c.hls.live_window = 2),
            ("hls.output_dir", |c| c.hls.output_dir = PathBuf::new()),
        ];
        for (setting, breaks) in broken {
            let setting = *setting;
            let mut config = IngestConfig::default();
            breaks(&mut config);
            match config.validate() {
                Err(ConfigError::OutOfRange {
                    setting: reported, ..
                }) => assert_eq!(reported, setting),
                other => panic!("{setting}: expected an error, got {other:?}"),
            }
        }
    }
}
