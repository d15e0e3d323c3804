//! OpenSpace WebRTC: a rendering-server supervisor with the original's JSON command API (`START`,
//! `STOP`, `RESOLUTION`, `STATUS`, `SERVER_STATUS`), instance launching, WebRTC signaling between
//! rendering instances and browsers, and a backend that orchestrates sessions across servers.
//!
//! # Status
//!
//! **Partly built.** Built and tested: the [`Supervisor`] (the command API over WebSocket,
//! one command per connection or many; an optional shared secret; `STATUS` that can wait for
//! a state), its [`slots`] (a sans-IO state machine, time passed in) and the
//! [`InstanceLauncher`] trait with the [`ProcessLauncher`] (a command template, readiness by
//! the API port) and the [`TestLauncher`]; the [`SignalingServer`] with its peer [`token`]s;
//! the [`Backend`] with its frontend pages; a minimal Web GUI streaming view
//! (`static/gui`). The `openspace-test-renderer` binary (in `examples/`) streams a VP8 test
//! picture over WebRTC like an instance, and the whole flow runs in headless Chromium and in
//! the workspace's demo.
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

pub mod backend;
mod config;
mod error;
pub mod launcher;
pub mod protocol;
pub mod slots;
mod supervisor;

pub use backend::Backend;
pub use config::{BackendConfig, RenderingServer, SignalingConfig, SupervisorConfig};
pub use error::{ConfigError, Error};
pub use launcher::{InstanceLauncher, ProcessLauncher, TestLauncher};
pub use supervisor::{MAX_COMMAND_BYTES, MAX_STATUS_WAIT, Supervisor, TokenIssuer};
pub mod signaling;
pub mod token;
pub use signaling::SignalingServer;
