//! What Camus keeps across restarts: its rooms, with their settings and a hash of their
//! password.
//!
//! A [`Store`] is memory ([`MemoryStore`], lost on restart: for tests and embedders that need
//! no durability), SQLite (the default: a file, [`SqlStore::open_default`] puts it at
//! `<data_dir>/camus.sqlite3`) or PostgreSQL ([`SqlStore::open`] with a `postgres://` URL, for
//! several servers sharing their rooms). Every implementation passes the same conformance
//! suite (`conformance` module, behind the cargo feature of that name).
//!
//! # What is stored, and what is not
//!
//! A room is a [`StoredRoom`]: slug, name, settings, the argon2 hash of its password (never
//! the password: see [`hash_password`]), when it was created and when it was last active.
//!
//! **Clients are not stored.** They live in the [`RoomRegistry`](crate::RoomRegistry) and die
//! with the process: after a restart every WebSocket is closed anyway, and a client is its
//! socket, its seat and its rate-limit bucket, state that changes with every message and that
//! a write per message would not make worth keeping. A restarted server therefore **refuses
//! the client cookies** issued before it (403 on the WebSocket, like a reaped client's); the
//! browser gets back in through `/room/<slug>` (with the password again, for a password room)
//! and is given a new id. The rooms themselves, their links and passwords, survive.
//!
//! # Time
//!
//! Times are milliseconds since the Unix epoch (`i64`; [`unix_ms`] converts a `SystemTime`),
//! passed in by the caller: the store has no clock of its own.
//!
//! # Idle rooms
//!
//! A room's [`last_active_ms`](StoredRoom::last_active_ms) starts at its creation and is moved
//! forward by [`Store::touch_room`] (never back, so a late write from another server cannot
//! make a busy room look idle). The server touches the rooms that have live clients as it
//! runs (the registry decides idleness while the process lives); at start-up,
//! [`Store::rooms_idle_since`] with `now - room_idle_timeout` names the rooms that were
//! already idle before the restart, and [`Store::delete_room_if_idle`] deletes one unless it
//! was touched meanwhile (by another server sharing the database).
//!
//! # Example
//!
//! ```
//! use camus_signaling::store::{
//!     CreateRoomError, MemoryStore, Store, StoredRoom, hash_password, unix_ms,
//! };
//! use std::time::SystemTime;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let store = MemoryStore::new();
//! let now = unix_ms(SystemTime::now());
//! let mut room = StoredRoom::new("excellent-adventure", "Excellent Adventure", now);
//! room.password_hash = Some(hash_password("wyld stallyns"));
//! store.create_room(&room).await?;
//!
//! // A second room with the same slug is refused: pick another (`…-2`) and try again.
//! let again = store.create_room(&room).await;
//! assert!(matches!(again, Err(CreateRoomError::SlugTaken { .. })));
//!
//! let stored = store.room("excellent-adventure").await?.expect("just created");
//! assert!(stored.admits(Some("wyld stallyns")));
//! assert!(!stored.admits(Some("bogus")));
//! assert!(!stored.admits(None));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod memory;
mod password;
mod sql;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use async_trait::async_trait;
use std::{
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

pub use memory::MemoryStore;
pub use password::{hash_password, verify_password};
pub use sql::{DEFAULT_SQLITE_FILE, SqlStore};

/// A room as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRoom {
    /// Its slug (`/room/<slug>`): unique in a store.
    pub slug: String,
    /// Its name, as shown on pages.
    pub name: String,
    /// The argon2id PHC string of its password ([`hash_password`]); `None` for a room anyone
    /// with the link may enter. Never a plaintext password.
    pub password_hash: Option<String>,
    /// Its guest limit; 0 for none.
    pub guest_limit: u32,
    /// Listed on the index page.
    pub public: bool,
    /// When it was created (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// When it was last active (ms since the Unix epoch); see [`Store::touch_room`].
    pub last_active_ms: i64,
}

impl StoredRoom {
    /// A private room without password or guest limit, created (and last active) at `at_ms`.
    pub fn new(slug: impl Into<String>, name: impl Into<String>, at_ms: i64) -> Self {
        Self {
            slug: slug.into(),
            name: name.into(),
            password_hash: None,
            guest_limit: 0,
            public: false,
            created_at_ms: at_ms,
            last_active_ms: at_ms,
        }
    }

    /// Whether entry needs a password.
    pub fn password_protected(&self) -> bool {
        self.password_hash.is_some()
    }

    /// Whether a visitor offering `password` may enter: always for a room without password;
    /// for one with, only if `password` is given and matches its hash ([`verify_password`],
    /// which costs an argon2 hash: call it off the async executor, e.g. in
    /// `tokio::task::spawn_blocking`).
    pub fn admits(&self, password: Option<&str>) -> bool {
        match (&self.password_hash, password) {
            (None, _) => true,
            (Some(hash), Some(candidate)) => verify_password(hash, candidate),
            (Some(_), None) => false,
        }
    }
}

impl fmt::Debug for StoredRoom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A password hash in a log is an offline guessing target: show only that there is one.
        f.debug_struct("StoredRoom")
            .field("slug", &self.slug)
            .field("name", &self.name)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("guest_limit", &self.guest_limit)
            .field("public", &self.public)
            .field("created_at_ms", &self.created_at_ms)
            .field("last_active_ms", &self.last_active_ms)
            .finish()
    }
}

/// A store that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("camus store: {0}")]
pub struct StoreError(#[from] pub sqlx::Error);

/// Why [`Store::create_room`] stored nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateRoomError {
    /// A room with this slug exists already: pick another slug and try again.
    #[error("a room with the slug {slug:?} exists already")]
    SlugTaken {
        /// The slug.
        slug: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Milliseconds since the Unix epoch of `time` (negative before it; saturating far out of
/// range).
pub fn unix_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Durable Camus state: its rooms. Each method is atomic, and safe to call concurrently from
/// several tasks (or, for PostgreSQL, several servers sharing the database).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new room. If a room has its slug already, nothing changes and the answer is
    /// [`CreateRoomError::SlugTaken`]: of concurrent creations of one slug, exactly one
    /// succeeds.
    async fn create_room(&self, room: &StoredRoom) -> Result<(), CreateRoomError>;

    /// The room with this slug, if there is one.
    async fn room(&self, slug: &str) -> Result<Option<StoredRoom>, StoreError>;

    /// Up to `limit` rooms, oldest first (by creation time, then slug): at start-up, the rooms
    /// to restore into the registry.
    async fn rooms(&self, limit: usize) -> Result<Vec<StoredRoom>, StoreError>;

    /// Up to `limit` public rooms, **newest first** (by creation time, latest first; rooms
    /// created in the same millisecond by slug, in byte order), so that a limited listing
    /// shows the rooms most likely still in use.
    async fn public_rooms(&self, limit: usize) -> Result<Vec<StoredRoom>, StoreError>;

    /// How many rooms there are (for [`max_rooms`](crate::CamusConfig::max_rooms)). Counting
    /// and creating are separate calls: servers sharing a database may overshoot the limit
    /// by the creations they race.
    async fn room_count(&self) -> Result<usize, StoreError>;

    /// The room was active at `at_ms`: its `last_active_ms` becomes `at_ms` if that is later
    /// (it never moves back). `false` if there is no such room.
    async fn touch_room(&self, slug: &str, at_ms: i64) -> Result<bool, StoreError>;

    /// The slugs of the rooms last active at or before `cutoff_ms`, least recently active
    /// first (then by slug).
    async fn rooms_idle_since(&self, cutoff_ms: i64) -> Result<Vec<String>, StoreError>;

    /// Deletes the room with this slug: `false` if there was none.
    async fn delete_room(&self, slug: &str) -> Result<bool, StoreError>;

    /// Deletes the room with this slug only if it was last active at or before `cutoff_ms`,
    /// checked and deleted in one step (a room touched meanwhile survives): `true` if it was
    /// deleted.
    async fn delete_room_if_idle(&self, slug: &str, cutoff_ms: i64) -> Result<bool, StoreError>;
}
