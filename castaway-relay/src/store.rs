//! Livestream records: created through the HTTP API, read at admission, and flagged while a
//! streamer is connected. [`MemoryStore`], or [`SqlStore`] on SQLite (the default) or
//! PostgreSQL; all pass the same conformance suite (feature `conformance`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row, SqlitePool, sqlite::SqliteConnectOptions};
use std::{collections::HashMap, path::Path, sync::Mutex};

/// One livestream, as the original stored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Livestream {
    /// Its id (the `livestream-id` clients send).
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// The user who may stream it.
    pub artist_id: String,
    /// The artist's display name.
    pub artist_name: String,
    /// Whether its streamer is connected now.
    pub streamer_connected: bool,
}

impl Livestream {
    /// A new livestream of `artist_id`, with a fresh id, not started.
    fn new(artist_id: &str, new: &NewLivestream) -> Self {
        Self {
            id: new_id(),
            title: new.title.clone(),
            description: new.description.clone(),
            artist_id: artist_id.to_owned(),
            artist_name: new.artist_name.clone(),
            streamer_connected: false,
        }
    }
}

/// What `POST /api/livestreams` creates (the artist comes from the token).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewLivestream {
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// The artist's display name.
    #[serde(default)]
    pub artist_name: String,
}

/// A store that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("livestream store: {0}")]
pub struct StoreError(#[from] pub sqlx::Error);

/// Where livestreams live.
#[async_trait]
pub trait LivestreamStore: Send + Sync + 'static {
    /// Creates a livestream of `artist_id`, not started.
    async fn create(&self, artist_id: &str, new: &NewLivestream) -> Result<Livestream, StoreError>;
    /// The livestream `id`, if it exists.
    async fn get(&self, id: &str) -> Result<Option<Livestream>, StoreError>;
    /// Every livestream, newest first, at most `limit`.
    async fn list(&self, limit: usize) -> Result<Vec<Livestream>, StoreError>;
    /// Marks `id` streamed, only if nobody streams it: `true` if this call did (one streamer
    /// per livestream, decided atomically).
    async fn claim_streamer(&self, id: &str) -> Result<bool, StoreError>;
    /// The streamer of `id` left.
    async fn release_streamer(&self, id: &str) -> Result<(), StoreError>;
    /// At start-up: nobody streams anything (flags left by a crash are cleared). Returns how
    /// many were set.
    async fn reset_streamers(&self) -> Result<u64, StoreError>;
}

fn new_id() -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Livestreams by id, each with its creation number (for newest-first listing), and the last
/// number given.
type Livestreams = (u64, HashMap<String, (u64, Livestream)>);

/// Livestreams in memory: lost on restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    livestreams: Mutex<Livestreams>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Livestreams) -> T) -> T {
        let mut guard = self
            .livestreams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

#[async_trait]
impl LivestreamStore for MemoryStore {
    async fn create(&self, artist_id: &str, new: &NewLivestream) -> Result<Livestream, StoreError> {
        let livestream = Livestream::new(artist_id, new);
        self.with(|(counter, all)| {
            *counter += 1;
            all.insert(livestream.id.clone(), (*counter, livestream.clone()));
        });
        Ok(livestream)
    }

    async fn get(&self, id: &str) -> Result<Option<Livestream>, StoreError> {
        Ok(self.with(|(_, all)| all.get(id).map(|(_, l)| l.clone())))
    }

    async fn list(&self, limit: usize) -> Result<Vec<Livestream>, StoreError> {
        let mut all: Vec<(u64, Livestream)> = self.with(|(_, all)| all.values().cloned().collect());
        all.sort_by_key(|(created, _)| std::cmp::Reverse(*created));
        Ok(all.into_iter().take(limit).map(|(_, l)| l).collect())
    }

    async fn claim_streamer(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.with(|(_, all)| match all.get_mut(id) {
            Some((_, l)) if !l.streamer_connected => {
                l.streamer_connected = true;
                true
            }
            _ => false,
        }))
    }

    async fn release_streamer(&self, id: &str) -> Result<(), StoreError> {
        self.with(|(_, all)| {
            if let Some((_, l)) = all.get_mut(id) {
                l.streamer_connected = false;
            }
        });
        Ok(())
    }

    async fn reset_streamers(&self) -> Result<u64, StoreError> {
        Ok(self.with(|(_, all)| {
            let mut reset = 0;
            for (_, l) in all.values_mut().filter(|(_, l)| l.streamer_connected) {
                l.streamer_connected = false;
                reset += 1;
            }
            reset
        }))
    }
}

/// Livestreams in SQLite or PostgreSQL (table `castaway_livestreams`, created when missing).
#[derive(Debug, Clone)]
pub enum SqlStore {
    /// SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            SqlStore::Sqlite($pool) => $body,
            SqlStore::Postgres($pool) => $body,
        }
    };
}

const COLUMNS: &str = "id, title, description, artist_id, artist_name, streamer_connected";

macro_rules! livestream_of {
    ($row:expr) => {{
        let row = $row;
        Livestream {
            id: row.try_get("id")?,
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            artist_id: row.try_get("artist_id")?,
            artist_name: row.try_get("artist_name")?,
            streamer_connected: row.try_get("streamer_connected")?,
        }
    }};
}

impl SqlStore {
    /// Opens `postgres://…`, or SQLite at `sqlite://<path>` (or a bare path), creating the
    /// database file and table when missing.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres(PgPool::connect(url).await?)
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let options = SqliteConnectOptions::new()
                .filename(Path::new(path))
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
            Self::Sqlite(SqlitePool::connect_with(options).await?)
        };
        let create = "CREATE TABLE IF NOT EXISTS castaway_livestreams (
            id TEXT PRIMARY KEY,
            seq BIGINT NOT NULL,
            title TEXT NOT NULL,
            description TEXT NOT NULL,
            artist_id TEXT NOT NULL,
            artist_name TEXT NOT NULL,
            streamer_connected BOOLEAN NOT NULL)";
        on_pool!(&store, |pool| {
            sqlx::query(create).execute(pool).await?;
        });
        Ok(store)
    }
}

#[async_trait]
impl LivestreamStore for SqlStore {
    async fn create(&self, artist_id: &str, new: &NewLivestream) -> Result<Livestream, StoreError> {
        let livestream = Livestream::new(artist_id, new);
        let sql = "INSERT INTO castaway_livestreams
            (id, seq, title, description, artist_id, artist_name, streamer_connected)
            VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM castaway_livestreams),
                    $2, $3, $4, $5, FALSE)";
        on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(livestream.id.clone())
                .bind(livestream.title.clone())
                .bind(livestream.description.clone())
                .bind(livestream.artist_id.clone())
                .bind(livestream.artist_name.clone())
                .execute(pool)
                .await?;
        });
        Ok(livestream)
    }

    async fn get(&self, id: &str) -> Result<Option<Livestream>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM castaway_livestreams WHERE id = $1");
        let sql = sqlx::AssertSqlSafe(sql);
        Ok(on_pool!(self, |pool| {
            match sqlx::query(sql)
                .bind(id.to_owned())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(livestream_of!(row)),
                None => None,
            }
        }))
    }

    async fn list(&self, limit: usize) -> Result<Vec<Livestream>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM castaway_livestreams ORDER BY seq DESC LIMIT $1");
        let sql = sqlx::AssertSqlSafe(sql);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql).bind(limit).fetch_all(pool).await?;
            let mut all = Vec::with_capacity(rows.len());
            for row in rows {
                all.push(livestream_of!(row));
            }
            all
        }))
    }

    async fn claim_streamer(&self, id: &str) -> Result<bool, StoreError> {
        let sql = "UPDATE castaway_livestreams SET streamer_connected = TRUE
            WHERE id = $1 AND streamer_connected = FALSE";
        Ok(on_pool!(self, |pool| sqlx::query(sql)
            .bind(id.to_owned())
            .execute(pool)
            .await?
            .rows_affected())
            == 1)
    }

    async fn release_streamer(&self, id: &str) -> Result<(), StoreError> {
        let sql = "UPDATE castaway_livestreams SET streamer_connected = FALSE WHERE id = $1";
        on_pool!(self, |pool| {
            sqlx::query(sql).bind(id.to_owned()).execute(pool).await?;
        });
        Ok(())
    }

    async fn reset_streamers(&self) -> Result<u64, StoreError> {
        let sql = "UPDATE castaway_livestreams SET streamer_connected = FALSE
            WHERE streamer_connected = TRUE";
        Ok(on_pool!(self, |pool| sqlx::query(sql)
            .execute(pool)
            .await?
            .rows_affected()))
    }
}

/// The behaviour every [`LivestreamStore`] must have. Panics on the first failure.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance {
    use super::{LivestreamStore, NewLivestream};

    /// Runs every check on an empty `store`.
    pub async fn run(store: &dyn LivestreamStore) {
        let new = NewLivestream {
            title: "Evening set".into(),
            description: "live".into(),
            artist_name: "Ada".into(),
        };
        let first = store.create("artist-1", &new).await.expect("created");
        let second = store.create("artist-2", &new).await.expect("created");
        assert_ne!(first.id, second.id);
        assert_eq!(first.id.len(), 20);
        assert!(!first.streamer_connected);
        assert_eq!(
            store.get(&first.id).await.expect("read"),
            Some(first.clone())
        );
        assert_eq!(store.get("nope").await.expect("read"), None);
        let listed = store.list(10).await.expect("listed");
        assert_eq!(listed, vec![second.clone(), first.clone()], "newest first");
        assert_eq!(store.list(1).await.expect("listed").len(), 1);

        assert!(store.claim_streamer(&first.id).await.expect("claimed"));
        assert!(
            !store.claim_streamer(&first.id).await.expect("refused"),
            "one streamer"
        );
        assert!(!store.claim_streamer("nope").await.expect("refused"));
        assert!(
            store
                .get(&first.id)
                .await
                .expect("read")
                .expect("there")
                .streamer_connected
        );
        store.release_streamer(&first.id).await.expect("released");
        assert!(
            store
                .claim_streamer(&first.id)
                .await
                .expect("claimed again")
        );
        assert!(store.claim_streamer(&second.id).await.expect("claimed"));
        assert_eq!(store.reset_streamers().await.expect("reset"), 2);
        assert_eq!(store.reset_streamers().await.expect("reset"), 0);
        assert!(
            !store
                .get(&second.id)
                .await
                .expect("read")
                .expect("there")
                .streamer_connected
        );
    }

    #[cfg(test)]
    mod tests_conformance {
        #[tokio::test]
        async fn memory_store() {
            super::run(&crate::store::MemoryStore::new()).await;
        }

        #[tokio::test]
        async fn sqlite_store() {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("castaway.sqlite3").display());
            super::run(&crate::store::SqlStore::open(&url).await.expect("opened")).await;
        }
    }
}
