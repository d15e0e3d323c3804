//! The media core shared by Open360's ingest and the streaming coordinator: an RTMP server that
//! asks a [`KeyVerifier`] before it accepts a publisher and relays the stream to players, and an
//! in-process HLS packager.
//!
//! # Status
//!
//! **Built:** the RTMP server (publish and play from ffmpeg and OBS, key verification before
//! acceptance, fail closed, one publisher per stream, players from a keyframe, the session
//! lifecycle) and HLS packaging of the original rendition without ffmpeg (MPEG-TS segments cut
//! at keyframes; live, VOD and master playlists written atomically), and the key verifiers: a
//! static table, the coordinator's HTTP webhook ([`WebhookVerifier`]) and [`danger::AcceptAnyKey`];
//! extra renditions ([`package_rendition`]) and preview images ([`make_previews`]) made by a
//! supervised ffmpeg that reads the stream on its stdin. Players share each frame's RTMP chunks
//! (made once per frame, not once per player). An RTMP pull client ([`RtmpPull`]) and an
//! in-process [`Relay`] let streams pulled from elsewhere be packaged the same way, and
//! [`IngestHandle::end_stream`] disconnects a publisher on request.
//!
//! # Parts
//!
//! ```text
//!  publisher (ffmpeg, OBS) ──RTMP──▶ server ──▶ KeyVerifier ──deny/error/timeout──▶ close
//!                                     │ guard   │ allow: VerifiedKey (record, previews,
//!                                     │ (bounds)│        renditions)
//!                                     ▼         ▼
//!                          rml_rtmp session   streams: one publisher per name; a bounded ring
//!                                              of shared frames + the current GOP
//!                                                 ├──▶ RTMP players (start at a keyframe;
//!                                                 │    a slow one skips ahead)
//!                                                 ├──▶ hls: Segmenter (sans-IO) → N.ts,
//!                                                 │    live.m3u8, vod.m3u8, master.m3u8
//!                                                 └──▶ ffmpeg (stdin FLV, supervised):
//!                                                      renditions → FLV → hls; previews → JPEG
//!  IngestHandle::events: preConnect … doneConnect, as the Open360 seed lists them
//! ```
//!
//! # Embedding
//!
//! ```no_run
//! use media_ingest::{HlsConfig, HlsOutput, IngestConfig, IngestServer, PublishOptions, StaticKeys};
//! use std::sync::Arc;
//!
//! # async fn example() -> Result<(), media_ingest::Error> {
//! let keys = StaticKeys::new().allow("live", "a-secret-key", PublishOptions::default());
//! let server = IngestServer::bind(IngestConfig::default(), Arc::new(keys)).await?;
//! let handle = server.handle();
//! // HLS for every accepted stream, in a directory of our choosing (never named by the key).
//! let mut finished = handle.package_every_stream(HlsConfig::default(), |_stream, _options, session| {
//!     Some(HlsOutput::new(format!("./data/hls/{session}")))
//! });
//! tokio::spawn(async move {
//!     while let Some(done) = finished.recv().await {
//!         println!("session {} packaged: {:?}", done.session, done.result);
//!     }
//! });
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! # Limits
//!
//! Every limit is a field of [`IngestConfig`], checked by [`IngestConfig::validate`]: connections
//! (1,024), handshake time (10 s), publisher silence (30 s), key verification time (10 s), the
//! largest RTMP message and chunk size (4 MiB), the frames held per stream for its consumers
//! (1,024) and the GOP cache (8 MiB); fixed: AMF0 messages of at most 64 KiB nesting at most 32
//! levels, and 1,024 commands per connection. Input that breaks them, malformed framing, and chunk
//! streams interleaved mid-message (which rml_rtmp cannot parse) end that connection only; so
//! does a panic in the RTMP parser.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod error;
mod events;
pub mod hls;
mod media;
mod options;
mod pull;
mod relay;
mod server;
mod streams;
mod transcode;
mod verify;
mod webhook;

pub use config::{HlsConfig, IngestConfig};
pub use error::{ConfigError, Error};
pub use events::{IngestEvent, SessionId};
pub use hls::{HlsFinished, HlsOutput, HlsReport, package_hls};
pub use media::{MediaFrame, MediaKind};
pub use options::OptionsError;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use pull::fuzz_pull_session;
pub use pull::{PullConfig, PullError, Pulled, RtmpPull};
pub use relay::{Relay, RelayPublisher};
/// A stream's `onMetaData`, as publishers send it (rml_rtmp's type).
pub use rml_rtmp::sessions::StreamMetadata;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use server::fuzz_connection;
pub use server::{IngestHandle, IngestServer};
pub use streams::{StreamName, Subscription};
pub use transcode::{
    FfmpegConfig, PreviewReport, make_previews, make_thumbnail, package_rendition,
};
pub use verify::{
    KeyVerifier, Preview, PublishOptions, PublishRequest, Rendition, StaticKeys, VerifiedKey,
    VerifyError, danger,
};
pub use webhook::WebhookVerifier;
