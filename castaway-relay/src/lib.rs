//! Castaway: a Socket.IO relay of audio chunks from one streamer to many listeners,
//! wire-compatible with the original Castaway media server and its JavaScript clients.
//!
//! # Status
//!
//! **Built:** the relay ([`CastawayServer`]: admission before connection, `upload` → `audio`
//! in order, history for late joiners, the streamer-leaves flow, limits), the
//! [`TokenVerifier`]s [`FirebaseVerifier`], [`Hs256Verifier`] and [`StaticTokens`], the
//! [`store::LivestreamStore`] (memory, SQLite, PostgreSQL), the HTTP API, and scale-out over
//! Redis ([`CastawayConfig::redis_url`]).
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
//!  scale-out: chunks, starts and ends on one Redis channel; one streamer per livestream by a
//!             lease in Redis, which also tells the other nodes when a node died
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

mod api;
mod cluster;
mod config;
mod error;
mod firebase;
mod relay;
mod server;
pub mod store;
mod verify;

#[cfg(feature = "fuzzing")]
pub use cluster::fuzz_message as fuzz_cluster_message;
pub use config::CastawayConfig;
pub use error::{ConfigError, Error};
pub use firebase::{CertSource, FirebaseVerifier, GOOGLE_CERTS_URL};
pub use server::CastawayServer;
pub use verify::{
    Hs256Verifier, StaticTokens, TokenError, TokenVerifier, VerifiedUser, firebase_issuer,
};
