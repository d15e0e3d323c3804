//! OpenSpace WebRTC: a rendering-server supervisor with the original's JSON command API (`START`,
//! `STOP`, `RESOLUTION`, `STATUS`, `SERVER_STATUS`), instance launching, WebRTC signaling between
//! rendering instances and browsers, and a backend that orchestrates sessions across servers.
//!
//! # Status
//!
//! **Not built yet.** This release holds the crate's configuration ([`SupervisorConfig`],
//! [`SignalingConfig`], [`BackendConfig`]) and error types ([`Error`], [`ConfigError`]). The
//! supervisor, the `InstanceLauncher` trait, the signaling server, the backend and the frontend
//! shown below are the next step and do not exist in this version.
//!
//! # Parts
//!
//! ```text
//!  browser ──▶ frontend (opaque signed session token) ──▶ backend (:5000)
//!                                                            │ SERVER_STATUS, START, STATUS
//!                                                            ▼ polling, STOP
//!                                       supervisor (:4699, JSON over WebSocket)
//!                                         slots: IDLE → INITIALIZING → RUNNING → DEINITIALIZING
//!                                         (sans-IO state machine; time passed in)
//!                                         InstanceLauncher: process (command template) | test
//!                                            │ instance n: API port 4682+n, peer id n
//!                                            ▼
//!  browser (peer 100+n) ◀──WebRTC──▶ instance ◀── signaling (:8443; REGISTER needs a slot token)
//! ```
//!
//! # Configuration
//!
//! ```
//! use openspace_supervisor::SupervisorConfig;
//!
//! let mut config = SupervisorConfig::default();
//! config.capacity = 8;
//! config.validate()?;
//! assert_eq!(config.api_port(7), Some(4689));
//! assert_eq!(config.browser_peer_id(7), Some(107));
//! # Ok::<(), openspace_supervisor::ConfigError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod error;

pub use config::{BackendConfig, SignalingConfig, SupervisorConfig};
pub use error::{ConfigError, Error};
