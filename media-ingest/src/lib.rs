//! The media core shared by Open360's ingest and the streaming coordinator: an RTMP server that
//! asks a [`KeyVerifier`](#status) before it accepts a publisher, and an in-process HLS packager.
//!
//! # Status
//!
//! **Not built yet.** This release holds the crate's configuration ([`IngestConfig`],
//! [`HlsConfig`]) and error types ([`Error`], [`ConfigError`]); the RTMP server, the
//! `KeyVerifier` trait and the HLS packager below are the next step of the project and do not
//! exist in this version. Nothing here pretends to ingest media.
//!
//! # Parts
//!
//! ```text
//!  publisher (ffmpeg, OBS) ──RTMP──▶ rtmp ──▶ KeyVerifier ──deny/timeout──▶ close (fail closed)
//!                                     │  allow (VerifiedKey: record, previews, resolutions)
//!                                     ▼
//!                                   demux (FLV → AVC/AAC access units)
//!                                     ├──▶ players (RTMP play, shared Bytes, keyframe start)
//!                                     └──▶ hls: MPEG-TS segmenter ──▶ live.m3u8 (sliding window)
//!                                                                  ──▶ vod.m3u8 (ENDLIST on stop)
//!                                                                  ──▶ master.m3u8
//!                                          ffmpeg (renditions, previews), supervised
//! ```
//!
//! # Configuration
//!
//! Every limit has a documented default and is checked once, before anything binds a socket:
//!
//! ```
//! use media_ingest::IngestConfig;
//! use std::time::Duration;
//!
//! let mut config = IngestConfig::default();
//! config.hls.target_segment_duration = Duration::from_secs(4);
//! config.validate()?;
//! assert_eq!(config.rtmp_listen.port(), 1935);
//! # Ok::<(), media_ingest::ConfigError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod error;

pub use config::{HlsConfig, IngestConfig};
pub use error::{ConfigError, Error};
