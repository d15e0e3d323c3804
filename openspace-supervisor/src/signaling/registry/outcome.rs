//! What the registry answers: the outputs for the server, what a message did, why it was
//! refused, and counts.

use super::ConnectionId;
#[cfg(doc)]
use super::{Pairing, PeerRegistry};
use crate::signaling::message::MessageError;
use crate::token::TokenError;

/// What the server must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Write `text` as a text frame to connection `to`.
    Send {
        /// The connection.
        to: ConnectionId,
        /// The frame.
        text: String,
    },
    /// Close connection `to` after what was sent to it before; the registry has forgotten it.
    Close {
        /// The connection.
        to: ConnectionId,
        /// Why.
        reason: CloseReason,
    },
}

/// Why the registry closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Its peer id was registered again, on a newer connection.
    Replaced,
    /// It did not register in time.
    NoRegister,
}

impl CloseReason {
    /// The close frame's reason text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replaced => "replaced by a newer connection",
            Self::NoRegister => "no REGISTER in time",
        }
    }
}

/// What a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// REGISTER answered with `REGISTER` (`replaced`: an older connection of the id was closed).
    Registered {
        /// Whether an older connection with the same id was closed.
        replaced: bool,
    },
    /// SESSION answered with `SESSION_OK`; the partner got a SESSION notice.
    SessionOpened,
    /// SESSION to a peer not registered yet: waiting for it.
    SessionPending,
    /// SDP or ICE relayed to the session partner.
    Relayed,
    /// From a connection the registry no longer knows (closed meanwhile): nothing done.
    Ignored,
}

/// Why a message was refused. Its text is the `content` of the ERROR reply the sender got.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not a message (too large, bad JSON, bad shape, unknown type).
    #[error(transparent)]
    Message(#[from] MessageError),
    /// SESSION, SDP or ICE before REGISTER.
    #[error("not registered: send REGISTER first")]
    NotRegistered,
    /// REGISTER with a token that is not valid for the id now.
    #[error("REGISTER refused: {0}")]
    Refused(#[from] TokenError),
    /// REGISTER of a second id on one connection.
    #[error("already registered as peer {0} on this connection")]
    AlreadyRegistered(u32),
    /// A `caller_id` other than the connection's own peer id.
    #[error("caller_id {claimed} is not this connection's peer id {peer}")]
    WrongCallerId {
        /// The `caller_id` given.
        claimed: u32,
        /// The id registered on the connection.
        peer: u32,
    },
    /// SDP or ICE outside an open session.
    #[error("no session: send SESSION first, and wait for SESSION_OK")]
    NoSession,
    /// SESSION with the sender's own id.
    #[error("cannot open a session with yourself")]
    SelfSession,
    /// SESSION between two peers the [`Pairing`] does not pair.
    #[error("peer {peer} may not open a session with peer {partner}")]
    NotPaired {
        /// The sender.
        peer: u32,
        /// The partner asked for.
        partner: u32,
    },
    /// SESSION while already in a session with another peer.
    #[error("already in a session with peer {0}")]
    AlreadyInSession(u32),
    /// SESSION with a peer in (or waiting for) a session with someone else.
    #[error("peer {0} is busy with another session")]
    Busy(u32),
}

impl RequestError {
    /// A short name, for metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Message(error) => error.label(),
            Self::NotRegistered => "not_registered",
            Self::Refused(_) => "register_refused",
            Self::AlreadyRegistered(_) => "already_registered",
            Self::WrongCallerId { .. } => "wrong_caller_id",
            Self::NoSession => "no_session",
            Self::SelfSession => "self_session",
            Self::NotPaired { .. } => "not_paired",
            Self::AlreadyInSession(_) => "already_in_session",
            Self::Busy(_) => "busy",
        }
    }
}

/// What [`handle_timeout`](PeerRegistry::handle_timeout) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Expired {
    /// Pending SESSION requests whose partner did not register in time.
    pub sessions: usize,
    /// Connections closed for not registering in time.
    pub connections: usize,
}

/// Counts, for gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Open connections, registered or not.
    pub connections: usize,
    /// Registered peers.
    pub peers: usize,
    /// Open sessions (pairs).
    pub sessions: usize,
    /// SESSION requests waiting for their partner to register.
    pub pending: usize,
}
