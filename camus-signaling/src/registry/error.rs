//! One error per registry operation, each with the HTTP status the original answered.

/// Why [`RoomRegistry::create_room`](super::RoomRegistry::create_room) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The server holds [`max_rooms`](crate::CamusConfig::max_rooms) rooms already.
    #[error("too many rooms: this server holds at most {limit}")]
    TooManyRooms {
        /// The limit.
        limit: usize,
    },
}

impl RoomError {
    /// The HTTP status to answer with: 503 (try again once idle rooms are deleted).
    pub fn status(&self) -> u16 {
        match self {
            Self::TooManyRooms { .. } => 503,
        }
    }
}

/// Why [`RoomRegistry::enter`](super::RoomRegistry::enter) refused a visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// No room has this slug (404).
    #[error("no such room")]
    UnknownRoom,
    /// Every seat is taken by a live client (418, the original's).
    #[error("Guest limit already reached")]
    RoomFull,
}

impl EntryError {
    /// The HTTP status to answer with: 404 or 418.
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownRoom => 404,
            Self::RoomFull => 418,
        }
    }
}

/// Why [`RoomRegistry::connect`](super::RoomRegistry::connect) refused a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// No room has this slug (404).
    #[error("no such room")]
    UnknownRoom,
    /// The id is not a client of this room: unknown, reaped, gone with `bye`, or a client of
    /// another room (403).
    #[error("not a client of this room")]
    NotAClientOfThisRoom,
    /// The client was admitted but every seat was taken before it connected (418).
    #[error("Guest limit already reached")]
    RoomFull,
}

impl ConnectError {
    /// The HTTP status to answer the WebSocket upgrade with: 404, 403 or 418.
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownRoom => 404,
            Self::NotAClientOfThisRoom => 403,
            Self::RoomFull => 418,
        }
    }
}
