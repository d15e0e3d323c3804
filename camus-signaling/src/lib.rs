//! Camus: rooms and WebSocket signaling for peer-to-peer WebRTC video calls, with ICE/TURN
//! credentials, wire-compatible with the original Camus server and its browser client.
//!
//! # Status
//!
//! **Not built yet; the sans-IO core is in.** This release holds the crate's configuration
//! ([`CamusConfig`], [`IceConfig`], [`TurnConfig`]), its error types ([`Error`],
//! [`ConfigError`]), the signaling [`message`] types, the [`ice`] servers with coturn REST
//! credentials, and the [`registry`]: rooms, entry and seats, the relay and ground control's
//! answers, rate limits and the ping/reap/idle-room timers, as a synchronous state machine
//! tested on simulated time. The server that drives it (HTTP pages, WebSockets, the timer
//! task), the `Store` implementations, the Redis scale-out and the browser client shown below
//! are the next steps and do not exist in this version.
//!
//! # Parts
//!
//! ```text
//!  browser ──HTTP──▶ server: pages, create room (POST /), enter (/room/<slug>) ─▶ signed cookie
//!     │              [not yet]                          │ RoomRegistry::create_room, ::enter
//!     │                                                 ▼
//!     └──WebSocket /room/<slug>/ws [not yet]──▶ registry: RoomRegistry (sans-IO; time passed in)
//!                                                ├─ seats: connect / disconnect; the guest
//!                                                │  limit counts live clients only
//!                                                ├─ ground control: ping/pong, profile,
//!                                                │  room-info, ice-servers (coturn REST), bye
//!                                                ├─ relay: offer / answer / icecandidate / text
//!                                                │  to a client of the same room, or the room;
//!                                                │  a token bucket per client
//!                                                └─ tick: ping silent clients, reap, delete
//!                                                   idle rooms
//!  store [not yet]: rooms and clients (memory, SQLite, PostgreSQL)
//!  scale-out [not yet]: rooms spanning nodes over Redis pub/sub
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
pub mod registry;

pub use config::{CamusConfig, IceConfig, TurnConfig};
pub use error::{ConfigError, Error};
pub use registry::RoomRegistry;
