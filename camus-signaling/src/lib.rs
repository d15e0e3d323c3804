//! Camus: rooms and WebSocket signaling for peer-to-peer WebRTC video calls, with ICE/TURN
//! credentials, wire-compatible with the original Camus server and its browser client.
//!
//! # Status
//!
//! **Not built yet; first pieces in.** This release holds the crate's configuration
//! ([`CamusConfig`], [`IceConfig`], [`TurnConfig`]), its error types ([`Error`],
//! [`ConfigError`]), the signaling [`message`] types and the [`ice`] servers with coturn REST
//! credentials. The room registry, the signaling server, the `Store` implementations and the
//! browser client shown below are the next steps and do not exist in this version.
//!
//! # Parts
//!
//! ```text
//!  browser ──HTTP──▶ pages: create room (POST /), enter room (/room/<slug>) ──▶ signed cookie
//!     │
//!     └──WebSocket /room/<slug>/ws──▶ proto: RoomRegistry (sans-IO; time passed in)
//!                                       ├─ ground control: ping/pong, profile, room-info,
//!                                       │  ice-servers (coturn REST credentials), bye
//!                                       ├─ relay: offer / answer / icecandidate / text to a
//!                                       │  client of the same room, or to the whole room
//!                                       └─ timers: ping silent clients, reap, delete idle rooms
//!                                     store: rooms and clients (memory, SQLite, PostgreSQL)
//!                                     scale-out: rooms spanning nodes over Redis pub/sub
//! ```
//!
//! # Configuration
//!
//! TURN can be configured by the original's environment variables:
//!
//! ```
//! use camus_signaling::{CamusConfig, IceConfig};
//! use std::collections::HashMap;
//!
//! let env = HashMap::from([
//!     ("TURN_HOST", "turn.example.com"),
//!     ("TURN_PORT", "3478"),
//!     ("TURN_STATIC_AUTH_SECRET", "north"),
//! ]);
//! let ice = IceConfig::from_original_variables(|name| env.get(name).map(|v| v.to_string()))?;
//! assert_eq!(ice.stun_urls, ["stun:turn.example.com:3478"]);
//! let mut config = CamusConfig::default();
//! config.ice = ice;
//! config.validate()?;
//! # Ok::<(), camus_signaling::ConfigError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod error;
pub mod ice;
pub mod message;

pub use config::{CamusConfig, IceConfig, TurnConfig};
pub use error::{ConfigError, Error};
