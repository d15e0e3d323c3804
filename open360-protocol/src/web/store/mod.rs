//! What the web service keeps: users (with the argon2 hash of their password and their stream
//! key), channels (settings, live state, counts) and VODs.
//!
//! A [`WebStore`] is memory ([`MemoryWebStore`]: tests, and embedders that need no durability),
//! SQLite (the default: [`SqlWebStore::open_sqlite`], a file in the data directory) or
//! PostgreSQL ([`SqlWebStore::open`] with a `postgres://` URL, for several web nodes sharing
//! one database). Every implementation passes one conformance suite (`conformance` module,
//! behind the cargo feature of that name).
//!
//! # Secrets
//!
//! A stream key is a secret of its owner: only [`User::stream_key`] holds it, and no listing
//! ([`WebStore::channels`], [`WebStore::vods`]) returns users. A [`Channel`] never carries a key.
//!
//! # Time
//!
//! Times are milliseconds since the Unix epoch, passed in by the caller: the store has no clock.

mod memory;
mod sql;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use async_trait::async_trait;
use serde::Serialize;
use std::fmt;

pub use memory::MemoryWebStore;
pub use sql::{DEFAULT_SQLITE_FILE, SqlWebStore};

/// A registered user. Its channel has the same name and is created with it.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The name: 3 to 32 characters of `[A-Za-z0-9_-]`, unique ignoring ASCII case.
    pub username: String,
    /// The PHC string of the password's argon2 hash.
    pub password_hash: String,
    /// The current stream key (32 characters of `[A-Za-z0-9]`), if one was issued.
    pub stream_key: Option<String>,
    /// When the user signed up.
    pub created_at_ms: i64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field(
                "stream_key",
                &self.stream_key.as_ref().map(|_| "<redacted>"),
            )
            .field("created_at_ms", &self.created_at_ms)
            .finish()
    }
}

/// What a channel's owner sets on the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ChannelSettings {
    /// The stream's title.
    pub title: String,
    /// The stream's description.
    pub description: String,
    /// Tags, in the owner's order, without duplicates.
    pub tags: Vec<String>,
    /// The directory (category) the channel is listed under; empty for none.
    pub directory: String,
}

/// Whether a channel is streaming.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LiveState {
    /// Nobody is publishing.
    #[default]
    Offline,
    /// A publisher was accepted; its stream cannot be watched yet (no segment written).
    Lurking,
    /// The stream can be watched.
    Online,
}

impl LiveState {
    /// The seed's stream status and its code: `ONLINE` 0, `OFFLINE` 1, `LURKING` 2 (`UNKNOWN`
    /// 3 is for a user that does not exist).
    pub fn status(self) -> (&'static str, u64) {
        match self {
            Self::Online => ("ONLINE", 0),
            Self::Offline => ("OFFLINE", 1),
            Self::Lurking => ("LURKING", 2),
        }
    }
}

/// A channel as anybody may see it: never a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Channel {
    /// The owner's username, which is the channel's name.
    pub username: String,
    /// The owner's settings.
    pub settings: ChannelSettings,
    /// Whether it is streaming.
    pub live: LiveState,
    /// The current (or, offline, the last) stream's id: the public name of its media, never
    /// derived from the key.
    pub stream_id: Option<String>,
    /// When the current stream went live (meaningless offline).
    pub live_since_ms: i64,
    /// Viewers in the chat room, as the chat last told (with the highest `seq`).
    pub viewers: u64,
    /// The `seq` of that count.
    pub viewers_seq: u64,
    /// Streams watched, over the channel's life (`incrementViewers`).
    pub total_views: u64,
}

/// One recorded stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Vod {
    /// The channel.
    pub username: String,
    /// The stream's id, unique per channel: a new stream never overwrites an older VOD.
    pub stream_id: String,
    /// When it started.
    pub started_at_ms: i64,
    /// Its length.
    pub duration_ms: i64,
    /// Its segments.
    pub segments: i64,
}

impl Vod {
    /// A VOD of `username`'s stream `stream_id`.
    pub fn new(username: impl Into<String>, stream_id: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            stream_id: stream_id.into(),
            started_at_ms: 0,
            duration_ms: 0,
            segments: 0,
        }
    }
}

/// Which channels to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelQuery {
    /// Only channels in this directory (exact match).
    pub directory: Option<String>,
    /// Only channels with this tag (exact match).
    pub tag: Option<String>,
    /// Only channels that are not offline.
    pub live_only: bool,
    /// At most this many.
    pub limit: usize,
}

/// A store failed, or refused a write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebStoreError {
    /// The username is taken (ignoring ASCII case).
    #[error("the username is taken")]
    UsernameTaken,
    /// The stream key is another user's (the caller draws another).
    #[error("the stream key is taken")]
    KeyTaken,
    /// No such user.
    #[error("no user {0}")]
    NoUser(String),
    /// The database failed.
    #[error("web store: {0}")]
    Database(#[from] sqlx::Error),
}

/// Where the web service keeps its users, channels and VODs (see the module docs).
#[async_trait]
pub trait WebStore: Send + Sync + 'static {
    /// Adds `user` and its channel (empty settings, offline). Refuses a taken name.
    async fn create_user(&self, user: &User) -> Result<(), WebStoreError>;
    /// The user named `username` (ignoring ASCII case).
    async fn user(&self, username: &str) -> Result<Option<User>, WebStoreError>;
    /// Replaces `username`'s stream key; the old one stops working at once. Refuses a key that
    /// another user holds.
    async fn set_stream_key(&self, username: &str, key: &str) -> Result<(), WebStoreError>;
    /// The name of the user whose current stream key is `key`.
    async fn user_by_stream_key(&self, key: &str) -> Result<Option<String>, WebStoreError>;
    /// The channel of `username` (ignoring ASCII case).
    async fn channel(&self, username: &str) -> Result<Option<Channel>, WebStoreError>;
    /// Replaces the settings of `username`'s channel.
    async fn update_settings(
        &self,
        username: &str,
        settings: &ChannelSettings,
    ) -> Result<(), WebStoreError>;
    /// Sets the live state and stream id of `username`'s channel; `live_since_ms` is kept when
    /// only the state changes within one stream id.
    async fn set_live(
        &self,
        username: &str,
        live: LiveState,
        stream_id: Option<&str>,
        at_ms: i64,
    ) -> Result<(), WebStoreError>;
    /// Records `count` viewers if `seq` is above the stored one; says whether it did. A count
    /// for an unknown user is ignored (`Ok(false)`).
    async fn set_viewers(
        &self,
        username: &str,
        count: u64,
        seq: u64,
    ) -> Result<bool, WebStoreError>;
    /// Adds one to the channel's total views. Unknown users are ignored.
    async fn increment_views(&self, username: &str) -> Result<(), WebStoreError>;
    /// Channels matching `query`: live ones first (online, then lurking), by viewers
    /// descending, then by username.
    async fn channels(&self, query: &ChannelQuery) -> Result<Vec<Channel>, WebStoreError>;
    /// Records a VOD; a second one with the same user and stream id replaces the first.
    async fn add_vod(&self, vod: &Vod) -> Result<(), WebStoreError>;
    /// `username`'s VODs, newest first, at most `limit`.
    async fn vods(&self, username: &str, limit: usize) -> Result<Vec<Vod>, WebStoreError>;
}
