//! A streaming coordinator: it balances RTMP and WebSocket streaming servers over HLS encoders,
//! asks the application to verify stream keys, reports stream events to it, and takes its
//! commands. Wire-compatible with the original coordinator's control links and webhooks.
//!
//! # Status
//!
//! **Partly built.** This release holds the configuration ([`CoordinatorConfig`], read from
//! exactly the original's environment variables by [`CoordinatorConfig::from_env`]), the error
//! types ([`Error`], [`ConfigError`]), and the coordinator without I/O ([`proto`]): the control
//! links' text format, every message typed per kind of link, the `ERROR` codes, stream ids, and
//! the [`proto::Scheduler`] (one publisher per channel, the least-loaded encoder, load released
//! when a stream closes or a link drops, heartbeats and dead links, the commands API's answers).
//! The tokio/axum driver around it (control links over WebSocket with their JWT, the webhooks
//! and their durable outbox, the HTTP commands API, TLS) and the streaming-server and encoder
//! binaries are the next steps and do not exist in this version.
//!
//! # Parts
//!
//! ```text
//!  streaming server ──WS /ws/control/rtmp|wss (JWT)──▶ links ──▶ scheduler (sans-IO)
//!    PUBLISH-REQUEST ─▶ key verification webhook ─▶ PUBLISH-ACCEPT / PUBLISH-DENY
//!  HLS encoder ──────WS /ws/control/hls (JWT)──────▶ links    one publisher per channel,
//!    REGISTER, STREAM-AVAILABLE, STREAM-CLOSED                  least-loaded encoder, load
//!    ◀─ ENCODE-START / ENCODE-STOP                              released on end or disconnect
//!  application ◀── event callbacks (durable outbox, x-event-id, retried with backoff)
//!  application ──▶ commands API: /commands/capacity, /commands/close, /commands/report
//! ```
//!
//! # Configuration
//!
//! ```
//! use coordinator_core::{CoordinatorConfig, WebhookAuth};
//!
//! let config = CoordinatorConfig::from_env([
//!     ("KEY_VERIFICATION_URL", "http://app.internal/verify"),
//!     ("KEY_VERIFICATION_AUTH", "Bearer"),
//!     ("KEY_VERIFICATION_AUTH_TOKEN", "t0ken"),
//!     ("CONTROL_SECRET", "shared"),
//!     ("HTTP_PORT", "8080"),
//! ])?;
//! let verification = config.key_verification.as_ref().expect("set");
//! assert!(matches!(verification.auth, WebhookAuth::Bearer { .. }));
//! assert_eq!(config.http_port, 8080);
//! assert_eq!(config.id_max_length, 128);
//! # Ok::<(), coordinator_core::ConfigError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod env;
mod error;
pub mod peers;
pub mod proto;
mod server;
pub mod store;

pub use config::{CommandsAuth, CoordinatorConfig, Secret, TlsConfig, Webhook, WebhookAuth};
pub use error::{ConfigError, Error};
pub use server::{Coordinator, MAX_RETRY_DELAY};
