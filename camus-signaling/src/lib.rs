//! Camus: rooms and WebSocket signaling for peer-to-peer WebRTC video calls, with ICE/TURN
//! credentials, wire-compatible with the original Camus server and its browser client.
//!
//! # Status
//!
//! **Partly built.** Built and tested with real clients (reqwest, the `ws` package): the
//! [`CamusServer`] (the pages, room creation and entry with a signed per-room cookie,
//! passwords hashed with argon2, the signaling WebSocket, the timers), the [`registry`] it
//! drives (rooms, seats, the relay and ground control's answers, rate limits, timers; a
//! synchronous state machine tested on simulated time), the [`store`] that keeps rooms across
//! restarts (memory, SQLite, PostgreSQL), the signaling [`message`] types and the [`ice`]
//! servers with coturn REST credentials, and a plain-JavaScript browser client (a mesh video
//! call with perfect negotiation, tested in headless Chromium) served at
//! `/static/camus.js`, and the scale-out: with a Redis URL, servers sharing the store and the
//! cookie secret are one room space (announced presence, relayed messages, silent servers'
//! clients taken out). Tested with reqwest, the `ws` package, headless Chromium and
//! `webrtc`-crate peers; measured by `examples/camus_load/` (see the README).
//!
//! # Parts
//!
//! ```text
//!  browser ──HTTP──▶ CamusServer: pages, create room (POST /), enter (/room/<slug>)
//!     │                          │ argon2 passwords (store), signed cookie per room
//!     │                          ▼
//!     └──WebSocket /room/<slug>/ws──▶ RoomRegistry (sans-IO, time passed in; one lock)
//!          ▲                          ├─ seats: connect / disconnect; the guest limit counts
//!          │                          │  live clients only
//!          │                          ├─ ground control: ping/pong, profile, room-info,
//!          │                          │  ice-servers (coturn REST), bye
//!          │                          ├─ relay: offer / answer / icecandidate / text to a
//!          │                          │  client of the same room, or the room; a token
//!          │                          │  bucket per client
//!          │                          └─ tick (every second): ping silent clients, reap,
//!          │                             delete idle rooms
//!          └── each client's queue of frames (a client too far behind is disconnected)
//!  store: rooms, kept across restarts (memory, SQLite, PostgreSQL); clients live in the
//!         registry only
//!  scale-out: rooms spanning servers over one Redis pub/sub channel (presence announced,
//!             messages for other servers' clients forwarded, `alive` heartbeats)
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
mod server;
pub mod store;

pub use config::{CamusConfig, IceConfig, TurnConfig};
pub use error::{ConfigError, Error};
pub use registry::RoomRegistry;
pub use server::CamusServer;
pub use store::{MemoryStore, SqlStore, Store};
