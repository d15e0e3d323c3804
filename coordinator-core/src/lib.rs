//! A streaming coordinator: it balances RTMP and WebSocket streaming servers over HLS encoders,
//! asks the application to verify stream keys, reports stream events to it, and takes its
//! commands. Wire-compatible with the original coordinator's control links and webhooks.
//!
//! # Status
//!
//! **Built:** the configuration ([`CoordinatorConfig`], read from exactly the original's
//! environment variables by [`CoordinatorConfig::from_env`]); the coordinator without I/O
//! ([`proto`]: the control links' text format, every message typed, the [`proto::Scheduler`]);
//! the server around it ([`Coordinator`]: control links over WebSocket with their JWT, key
//! verification, event callbacks through a durable outbox in a [`store::Store`], the commands
//! API, TLS with certificate reload); and its peers ([`peers`]: a streaming server's
//! [`peers::CoordinatorVerifier`] and the HLS [`peers::Encoder`]). Not built: a WebSocket
//! streaming server.
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
//! # Running one
//!
//! ```no_run
//! use coordinator_core::{Coordinator, CoordinatorConfig, store::SqlStore};
//! use std::sync::Arc;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = CoordinatorConfig::from_env(std::env::vars())?;
//! let store = SqlStore::open("sqlite://coordinator.sqlite3").await?;
//! let coordinator = Coordinator::bind(config, Arc::new(store)).await?;
//! println!("listening on {}", coordinator.local_addr()?);
//! coordinator
//!     .run(axum::Router::new(), async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! # Ok(())
//! # }
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
