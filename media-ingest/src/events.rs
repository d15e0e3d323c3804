//! The session lifecycle, as Open360's ingest (a node-media-server fork) names it, in the order
//! the seed lists: an embedder subscribes with [`IngestServer::events`](crate::IngestServer::events).

use crate::{streams::StreamName, verify::PublishOptions};
use std::net::SocketAddr;

/// Identifies one RTMP connection for the life of the server.
pub type SessionId = u64;

/// Something that happened to an RTMP session.
///
/// A publisher's session goes `PreConnect`, `PostConnect`, `PrePublish`, `PostPublish`,
/// `DonePublish`, `DoneConnect`; a player's `PreConnect`, `PostConnect`, `PrePlay`, `PostPlay`,
/// `DonePlay`, `DoneConnect`. A refused publisher gets `PublishRefused` instead of `PostPublish`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IngestEvent {
    /// A TCP connection was accepted; the handshake comes next.
    PreConnect {
        /// The session.
        session: SessionId,
        /// The peer's address.
        client: SocketAddr,
    },
    /// The client's `connect` to an application was accepted.
    PostConnect {
        /// The session.
        session: SessionId,
        /// The application.
        app: String,
    },
    /// A client asked to publish; its key is being verified.
    PrePublish {
        /// The session.
        session: SessionId,
        /// The stream.
        stream: StreamName,
    },
    /// The key was verified and the publisher accepted.
    PostPublish {
        /// The session.
        session: SessionId,
        /// The stream.
        stream: StreamName,
        /// What the verifier decided for it.
        options: PublishOptions,
    },
    /// The publisher was refused (bad key, verifier error or timeout, name already published).
    PublishRefused {
        /// The session.
        session: SessionId,
        /// The stream.
        stream: StreamName,
        /// Why, for logs (never the key).
        reason: String,
    },
    /// The publisher stopped or went away; the stream ended.
    DonePublish {
        /// The session.
        session: SessionId,
        /// The stream.
        stream: StreamName,
    },
    /// A client asked to play.
    PrePlay {
        /// The session.
        session: SessionId,
        /// The stream.
        stream: StreamName,
    },
    /// The player was accepted and gets the stream.
    PostPlay {
        /// The session.
        session: SessionId,
        /// The stream.
        stream: StreamName,
    },
    /// The player stopped, went away, or the stream ended.
    DonePlay {
        /// The session.
        session: SessionId,
        /// The stream.
        stream: StreamName,
    },
    /// The connection closed.
    DoneConnect {
        /// The session.
        session: SessionId,
        /// Why, when it was not a clean close (a protocol error, a timeout …).
        error: Option<String>,
    },
}

impl IngestEvent {
    /// The session the event belongs to.
    pub fn session(&self) -> SessionId {
        match self {
            Self::PreConnect { session, .. }
            | Self::PostConnect { session, .. }
            | Self::PrePublish { session, .. }
            | Self::PostPublish { session, .. }
            | Self::PublishRefused { session, .. }
            | Self::DonePublish { session, .. }
            | Self::PrePlay { session, .. }
            | Self::PostPlay { session, .. }
            | Self::DonePlay { session, .. }
            | Self::DoneConnect { session, .. } => *session,
        }
    }

    /// The lifecycle name of the original (`preConnect`, `postPublish` …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::PreConnect { .. } => "preConnect",
            Self::PostConnect { .. } => "postConnect",
            Self::PrePublish { .. } => "prePublish",
            Self::PostPublish { .. } => "postPublish",
            Self::PublishRefused { .. } => "publishRefused",
            Self::DonePublish { .. } => "donePublish",
            Self::PrePlay { .. } => "prePlay",
            Self::PostPlay { .. } => "postPlay",
            Self::DonePlay { .. } => "donePlay",
            Self::DoneConnect { .. } => "doneConnect",
        }
    }
}
