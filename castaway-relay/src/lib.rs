//! Castaway: a Socket.IO relay of audio chunks from one streamer to many listeners,
//! wire-compatible with the original Castaway media server and its JavaScript clients.
//!
//! # Status
//!
//! **Not built yet.** This release holds the crate's configuration ([`CastawayConfig`]) and error
//! types ([`Error`], [`ConfigError`]). The relay, the `TokenVerifier` and `LivestreamStore`
//! traits and the HTTP API shown below are the next step and do not exist in this version.
//!
//! # Parts
//!
//! ```text
//!  streamer ──Socket.IO /streamer (id-token, livestream-id)──▶ admission: TokenVerifier →
//!                                                              VerifiedUser; uid == artistId;
//!                                                              one streamer per livestream
//!     upload (binary) ─▶ relay ─▶ audio (the same Bytes, shared) ─▶ every listener, in order
//!                          │        └─ a listener more than a bounded queue behind is dropped
//!                          └─ history: the last chunk(s) for late joiners
//!  listener ──Socket.IO /listener──▶ admission: livestream exists and has started
//!  HTTP /api/livestreams ──▶ LivestreamStore (memory, SQLite, PostgreSQL)
//!  scale-out: socketioxide's Redis adapter
//! ```
//!
//! # Configuration
//!
//! ```
//! use castaway_relay::CastawayConfig;
//!
//! let mut config = CastawayConfig::default();
//! config.history_chunks = 2;
//! config.validate()?;
//! assert_eq!(config.max_chunk_bytes, 1 << 20);
//! # Ok::<(), castaway_relay::ConfigError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod error;

pub use config::CastawayConfig;
pub use error::{ConfigError, Error};
