//! Open360's internal API protocol and its services: the hub that relays and logs `api-message`
//! between services, the service client, and the web, ingest, external API and chat services.
//!
//! # Status
//!
//! **Mostly built.** Built: the [`message`] types, the [`Hub`] with its [`log`], the
//! [`ServiceClient`] over a [`Transport`] ([`SocketIoTransport`], [`LocalHub`]), the
//! [`ExternalApi`], the [`Chat`] with chat tokens (on one node in memory or on several
//! sharing a Redis), the [`WebService`] with its [`web::store`], and the [`IngestService`] on
//! media-ingest. Not yet: benchmarks of the web and ingest, fuzzing of the web's form input.
//!
//! # Parts
//!
//! ```text
//!             ┌────────────────── hub (:4000, Socket.IO) ──────────────────┐
//!             │ relays api-message as event <target> to that service only; │
//!             │ answers for absent services; logs every message (Store)    │
//!             └──▲──────────────▲───────────────▲───────────────▲──────────┘
//!   Transport:   │ Socket.IO or in-process channel (same service code)
//!            web-api        ingest-api       chat-api     web-external-api
//!            (:8000; users, (RTMP :1935 on   (:4002,      (:8080, GET / status,
//!             keys, VODs)    media-ingest)    Socket.IO)   stream status/stats)
//! ```
//!
//! # Configuration
//!
//! ```
//! use open360_protocol::{ChatConfig, HubConfig};
//!
//! let hub = HubConfig::default();
//! hub.validate()?;
//! assert_eq!(hub.listen.port(), 4000);
//! assert_eq!(ChatConfig::default().default_channel, "universal");
//! # Ok::<(), open360_protocol::ConfigError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod chat;
mod chat_token;
mod client;
mod config;
mod error;
mod external;
mod hub;
mod ingest;
pub mod log;
pub mod message;
mod net;
mod routing;
mod transport;
pub mod web;

pub use chat::{CHAT_LABEL, Chat, escape};
pub use chat_token::{ChatTokenError, issue_chat_token, verify_chat_token};
pub use client::{Answer, AskError, ServiceBuilder, ServiceClient};
pub use config::{ChatConfig, ExternalApiConfig, HubConfig};
pub use error::{ConfigError, Error};
pub use external::{EXTERNAL_API_LABEL, ExternalApi};
pub use hub::{Hub, label_of};
pub use ingest::{
    HubKeyVerifier, INGEST_APP, INGEST_LABEL, IngestService, IngestServiceConfig, media_router,
};
pub use message::{ApiMessage, MessageType, Package};
pub use routing::HUB_LABEL;
pub use transport::{Link, LocalHub, SocketIoTransport, Transport, TransportError};
pub use web::{WEB_LABEL, WebConfig, WebService};
