//! The SQL stores: SQLite (one file, the default) and PostgreSQL. The statements are the same
//! for both (`$N` parameters, `ON CONFLICT DO NOTHING`); only the pool, and the slug column's
//! collation, differ.

use super::{CreateRoomError, Store, StoreError, StoredRoom};
use async_trait::async_trait;
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

/// The SQLite file [`SqlStore::open_default`] opens in the data directory.
pub const DEFAULT_SQLITE_FILE: &str = "camus.sqlite3";

/// A [`Store`] in SQLite or PostgreSQL. Its table, `camus_rooms`, is created when missing (on
/// every open: opening is idempotent); the `camus_` prefix lets the database be shared with
/// the application.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Pool,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The table and its indexes. PostgreSQL compares slugs in byte order (`COLLATE "C"`), as
/// SQLite does by default, so that both list rooms in the same order whatever the database's
/// locale.
fn schema(slug_collation: &str) -> [String; 3] {
    [
        format!(
            "CREATE TABLE IF NOT EXISTS camus_rooms (
                slug TEXT {slug_collation} PRIMARY KEY,
                name TEXT NOT NULL,
                password_hash TEXT,
                guest_limit BIGINT NOT NULL,
                is_public BOOLEAN NOT NULL,
                created_at_ms BIGINT NOT NULL,
                last_active_ms BIGINT NOT NULL)"
        ),
        "CREATE INDEX IF NOT EXISTS camus_rooms_public ON camus_rooms (is_public, created_at_ms)"
            .to_owned(),
        "CREATE INDEX IF NOT EXISTS camus_rooms_last_active ON camus_rooms (last_active_ms)"
            .to_owned(),
    ]
}

/// Serialises schema creation among servers opening one PostgreSQL database at once
/// (concurrent `CREATE TABLE IF NOT EXISTS` can fail there): the key of a transaction-scoped
/// advisory lock, `camus` in ASCII.
const SCHEMA_LOCK: i64 = 0x63_61_6d_75_73;

/// `SELECT <every column> FROM camus_rooms <rest>`, as one `&'static str`.
macro_rules! select_rooms {
    ($rest:literal) => {
        concat!(
            "SELECT slug, name, password_hash, guest_limit, is_public, created_at_ms, ",
            "last_active_ms FROM camus_rooms ",
            $rest
        )
    };
}

const INSERT: &str = "INSERT INTO camus_rooms
    (slug, name, password_hash, guest_limit, is_public, created_at_ms, last_active_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (slug) DO NOTHING";
const ROOM: &str = select_rooms!("WHERE slug = $1");
const ROOMS: &str = select_rooms!("ORDER BY created_at_ms, slug LIMIT $1");
const PUBLIC_ROOMS: &str =
    select_rooms!("WHERE is_public = TRUE ORDER BY created_at_ms DESC, slug LIMIT $1");
const COUNT: &str = "SELECT COUNT(*) FROM camus_rooms";
const TOUCH: &str = "UPDATE camus_rooms
    SET last_active_ms = CASE WHEN last_active_ms < $1 THEN $1 ELSE last_active_ms END
    WHERE slug = $2";
const IDLE: &str = "SELECT slug FROM camus_rooms WHERE last_active_ms <= $1
    ORDER BY last_active_ms, slug";
const DELETE: &str = "DELETE FROM camus_rooms WHERE slug = $1";
const DELETE_IF_IDLE: &str = "DELETE FROM camus_rooms WHERE slug = $1 AND last_active_ms <= $2";

/// A row of `camus_rooms`, in the types both databases decode.
#[derive(sqlx::FromRow)]
struct RoomRow {
    slug: String,
    name: String,
    password_hash: Option<String>,
    guest_limit: i64,
    is_public: bool,
    created_at_ms: i64,
    last_active_ms: i64,
}

impl From<RoomRow> for StoredRoom {
    fn from(row: RoomRow) -> Self {
        Self {
            slug: row.slug,
            name: row.name,
            password_hash: row.password_hash,
            // Only `u32`s are written; anything else was put there by hand.
            guest_limit: u32::try_from(row.guest_limit.max(0)).unwrap_or(u32::MAX),
            public: row.is_public,
            created_at_ms: row.created_at_ms,
            last_active_ms: row.last_active_ms,
        }
    }
}

/// Runs `$body` with `$executor` bound to whichever pool this store has: one statement text,
/// two drivers.
macro_rules! on_pool {
    ($pool:expr, |$executor:ident| $body:expr) => {
        match $pool {
            Pool::Sqlite($executor) => $body,
            Pool::Postgres($executor) => $body,
        }
    };
}

fn configuration_error(message: String) -> StoreError {
    StoreError(sqlx::Error::Configuration(message.into()))
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SqlStore {
    /// Opens (creating it, and its directory, if missing) the SQLite database at `path`, in
    /// WAL mode.
    pub async fn sqlite(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(sqlx::Error::Io)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A committed room survives a crash of the process; only a power loss can take
            // back the last commits (WAL with synchronous=NORMAL).
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Self::with_pool(Pool::Sqlite(pool)).await
    }

    /// Connects to PostgreSQL at `url` (`postgres://user@host:port/database?…`).
    pub async fn postgres(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Self::with_pool(Pool::Postgres(pool)).await
    }

    /// Opens the store a URL names: `postgres://…` or `postgresql://…` for PostgreSQL;
    /// `sqlite://<path>` (`sqlite://data/camus.sqlite3` is relative to the working directory,
    /// `sqlite:///var/lib/camus/camus.sqlite3` absolute), `sqlite:<path>` or a bare path for
    /// SQLite, the file and its directory created when missing. Anything else, and an
    /// in-memory SQLite database (use [`MemoryStore`](super::MemoryStore)), is a
    /// configuration error.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::postgres(url).await;
        }
        let path = match url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Some(path) => path,
            None if url.contains("://") => {
                return Err(configuration_error(format!(
                    "unsupported database URL {url:?}: expected postgres:// or sqlite://"
                )));
            }
            None => url,
        };
        // Keep query options (`?mode=…`) out of the file name.
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path.starts_with(":memory:") {
            return Err(configuration_error(format!(
                "no database file in {url:?} (for a store in memory, use MemoryStore)"
            )));
        }
        Self::sqlite(path).await
    }

    /// The default SQLite file of a data directory: `<data_dir>/camus.sqlite3`.
    pub fn default_path(data_dir: impl AsRef<Path>) -> PathBuf {
        data_dir.as_ref().join(DEFAULT_SQLITE_FILE)
    }

    /// Opens (creating them if missing) [`default_path`](Self::default_path)`(data_dir)` and
    /// the directory: the store of [`CamusConfig::data_dir`](crate::CamusConfig::data_dir)
    /// when no database URL is configured.
    pub async fn open_default(data_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::sqlite(Self::default_path(data_dir)).await
    }

    /// Which database this store is in: `"sqlite"` or `"postgres"` (for logs).
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool's connections (waiting for those in use to be returned); for SQLite,
    /// this checkpoints the write-ahead log into the database file.
    pub async fn close(&self) {
        on_pool!(&self.pool, |pool| pool.close().await);
    }

    async fn with_pool(pool: Pool) -> Result<Self, StoreError> {
        match &pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                for statement in schema("") {
                    // Our own text: no outside input.
                    let statement = sqlx::AssertSqlSafe(statement);
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(SCHEMA_LOCK)
                    .execute(&mut *tx)
                    .await?;
                for statement in schema("COLLATE \"C\"") {
                    let statement = sqlx::AssertSqlSafe(statement);
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(Self { pool })
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn create_room(&self, room: &StoredRoom) -> Result<(), CreateRoomError> {
        // `ON CONFLICT DO NOTHING` decides between racing creations inside the database: the
        // loser inserts no row, whichever server it runs on.
        let inserted = on_pool!(&self.pool, |pool| sqlx::query(INSERT)
            .bind(room.slug.clone())
            .bind(room.name.clone())
            .bind(room.password_hash.clone())
            .bind(i64::from(room.guest_limit))
            .bind(room.public)
            .bind(room.created_at_ms)
            .bind(room.last_active_ms)
            .execute(pool)
            .await
            .map_err(StoreError)?
            .rows_affected());
        if inserted == 0 {
            return Err(CreateRoomError::SlugTaken {
                slug: room.slug.clone(),
            });
        }
        Ok(())
    }

    async fn room(&self, slug: &str) -> Result<Option<StoredRoom>, StoreError> {
        let row: Option<RoomRow> = on_pool!(&self.pool, |pool| sqlx::query_as(ROOM)
            .bind(slug.to_owned())
            .fetch_optional(pool)
            .await?);
        Ok(row.map(StoredRoom::from))
    }

    async fn rooms(&self, limit: usize) -> Result<Vec<StoredRoom>, StoreError> {
        let rows: Vec<RoomRow> = on_pool!(&self.pool, |pool| sqlx::query_as(ROOMS)
            .bind(to_i64(limit))
            .fetch_all(pool)
            .await?);
        Ok(rows.into_iter().map(StoredRoom::from).collect())
    }

    async fn public_rooms(&self, limit: usize) -> Result<Vec<StoredRoom>, StoreError> {
        let rows: Vec<RoomRow> = on_pool!(&self.pool, |pool| sqlx::query_as(PUBLIC_ROOMS)
            .bind(to_i64(limit))
            .fetch_all(pool)
            .await?);
        Ok(rows.into_iter().map(StoredRoom::from).collect())
    }

    async fn room_count(&self) -> Result<usize, StoreError> {
        let count: i64 = on_pool!(&self.pool, |pool| sqlx::query_scalar(COUNT)
            .fetch_one(pool)
            .await?);
        Ok(usize::try_from(count).unwrap_or(0))
    }

    async fn touch_room(&self, slug: &str, at_ms: i64) -> Result<bool, StoreError> {
        let updated = on_pool!(&self.pool, |pool| sqlx::query(TOUCH)
            .bind(at_ms)
            .bind(slug.to_owned())
            .execute(pool)
            .await?
            .rows_affected());
        Ok(updated > 0)
    }

    async fn rooms_idle_since(&self, cutoff_ms: i64) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(&self.pool, |pool| sqlx::query_scalar(IDLE)
            .bind(cutoff_ms)
            .fetch_all(pool)
            .await?))
    }

    async fn delete_room(&self, slug: &str) -> Result<bool, StoreError> {
        let deleted = on_pool!(&self.pool, |pool| sqlx::query(DELETE)
            .bind(slug.to_owned())
            .execute(pool)
            .await?
            .rows_affected());
        Ok(deleted > 0)
    }

    async fn delete_room_if_idle(&self, slug: &str, cutoff_ms: i64) -> Result<bool, StoreError> {
        let deleted = on_pool!(&self.pool, |pool| sqlx::query(DELETE_IF_IDLE)
            .bind(slug.to_owned())
            .bind(cutoff_ms)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(deleted > 0)
    }
}
