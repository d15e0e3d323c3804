//! The web store in SQLite (one file, the default) or PostgreSQL. Both run the same statements
//! (`$N` parameters, `ON CONFLICT`), except the tag filter, which reads the JSON tag list with
//! each database's own function.

use super::{
    Channel, ChannelQuery, ChannelSettings, LiveState, User, Vod, WebStore, WebStoreError,
    memory::rank,
};
use async_trait::async_trait;
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use std::{path::Path, time::Duration};

/// The SQLite file the web service keeps in its data directory when no database is configured.
pub const DEFAULT_SQLITE_FILE: &str = "open360-web.sqlite3";

/// A [`WebStore`] in SQLite or PostgreSQL, in the tables `open360_users`, `open360_channels`
/// and `open360_vods` (created when missing, on every open). Counts (`u64`) are stored as
/// `BIGINT` and clamped to `i64::MAX` on the way in.
#[derive(Debug, Clone)]
pub struct SqlWebStore {
    pool: Pool,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has: one text, two drivers.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// The tables and indexes. Users and channels are keyed by the ASCII-lowercased username,
/// which makes names unique ignoring case. On PostgreSQL, `collate` is `COLLATE "C"` so that
/// names sort in byte order, as in SQLite and in memory, whatever the database's locale.
fn schema(collate: &str) -> [String; 6] {
    [
        format!(
            "CREATE TABLE IF NOT EXISTS open360_users (
                username_lower TEXT {collate} PRIMARY KEY,
                username TEXT {collate} NOT NULL,
                password_hash TEXT NOT NULL,
                stream_key TEXT UNIQUE,
                created_at_ms BIGINT NOT NULL)"
        ),
        // `live`: 0 offline, 1 lurking, 2 online (the listing order, descending).
        format!(
            "CREATE TABLE IF NOT EXISTS open360_channels (
                username_lower TEXT {collate} PRIMARY KEY
                    REFERENCES open360_users (username_lower),
                title TEXT NOT NULL DEFAULT '',
                description TEXT NOT NULL DEFAULT '',
                tags TEXT NOT NULL DEFAULT '[]',
                directory TEXT NOT NULL DEFAULT '',
                live BIGINT NOT NULL DEFAULT 0,
                stream_id TEXT,
                live_since_ms BIGINT NOT NULL DEFAULT 0,
                viewers BIGINT NOT NULL DEFAULT 0,
                viewers_seq BIGINT NOT NULL DEFAULT 0,
                total_views BIGINT NOT NULL DEFAULT 0)"
        ),
        "CREATE INDEX IF NOT EXISTS open360_channels_listing
            ON open360_channels (live, viewers)"
            .to_owned(),
        "CREATE INDEX IF NOT EXISTS open360_channels_directory
            ON open360_channels (directory)"
            .to_owned(),
        format!(
            "CREATE TABLE IF NOT EXISTS open360_vods (
                username_lower TEXT {collate} NOT NULL
                    REFERENCES open360_users (username_lower),
                stream_id TEXT {collate} NOT NULL,
                started_at_ms BIGINT NOT NULL,
                duration_ms BIGINT NOT NULL,
                segments BIGINT NOT NULL,
                PRIMARY KEY (username_lower, stream_id))"
        ),
        "CREATE INDEX IF NOT EXISTS open360_vods_newest
            ON open360_vods (username_lower, started_at_ms)"
            .to_owned(),
    ]
}

/// The key of the transaction-scoped advisory lock that serialises schema creation on
/// PostgreSQL (concurrent `CREATE TABLE IF NOT EXISTS` can fail there): `o360web` in ASCII.
const SCHEMA_LOCK: i64 = 0x6f_33_36_30_77_65_62;

const INSERT_USER: &str = "INSERT INTO open360_users
    (username_lower, username, password_hash, stream_key, created_at_ms)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (username_lower) DO NOTHING";
const INSERT_CHANNEL: &str = "INSERT INTO open360_channels (username_lower) VALUES ($1)";
const USER: &str = "SELECT username, password_hash, stream_key, created_at_ms
    FROM open360_users WHERE username_lower = $1";
const SET_KEY: &str = "UPDATE open360_users SET stream_key = $1 WHERE username_lower = $2";
const USER_BY_KEY: &str = "SELECT username FROM open360_users WHERE stream_key = $1";
const UPDATE_SETTINGS: &str = "UPDATE open360_channels
    SET title = $1, description = $2, tags = $3, directory = $4
    WHERE username_lower = $5";
// Every expression of a `SET` sees the row as it was: `stream_id` in the `CASE` is the old one.
const SET_LIVE: &str = "UPDATE open360_channels
    SET live = $1,
        live_since_ms = CASE
            WHEN stream_id = CAST($2 AS TEXT) OR (stream_id IS NULL AND CAST($2 AS TEXT) IS NULL)
            THEN live_since_ms ELSE $3 END,
        stream_id = CAST($2 AS TEXT)
    WHERE username_lower = $4";
const SET_VIEWERS: &str = "UPDATE open360_channels SET viewers = $1, viewers_seq = $2
    WHERE username_lower = $3 AND viewers_seq < $2";
const INCREMENT_VIEWS: &str =
    "UPDATE open360_channels SET total_views = total_views + 1 WHERE username_lower = $1";
const ADD_VOD: &str = "INSERT INTO open360_vods
    (username_lower, stream_id, started_at_ms, duration_ms, segments)
    SELECT username_lower, $2, $3, $4, $5 FROM open360_users WHERE username_lower = $1
    ON CONFLICT (username_lower, stream_id) DO UPDATE SET
        started_at_ms = excluded.started_at_ms,
        duration_ms = excluded.duration_ms,
        segments = excluded.segments";
const VODS: &str = "SELECT u.username, v.stream_id, v.started_at_ms, v.duration_ms, v.segments
    FROM open360_vods v JOIN open360_users u ON u.username_lower = v.username_lower
    WHERE v.username_lower = $1
    ORDER BY v.started_at_ms DESC, v.stream_id DESC LIMIT $2";

/// `SELECT <a channel's columns> FROM <channels and their owners> <rest>`.
macro_rules! select_channels {
    ($($rest:expr),*) => {
        concat!(
            "SELECT u.username, c.title, c.description, c.tags, c.directory, c.live, ",
            "c.stream_id, c.live_since_ms, c.viewers, c.viewers_seq, c.total_views ",
            "FROM open360_channels c JOIN open360_users u ON u.username_lower = c.username_lower ",
            $($rest),*
        )
    };
}

/// The listing, `$tags` being the table function that yields a channel's tags as rows `t` of
/// one text column `value`.
macro_rules! list_channels {
    ($tags:literal) => {
        select_channels!(
            "WHERE (CAST($1 AS TEXT) IS NULL OR c.directory = CAST($1 AS TEXT)) ",
            "AND (CAST($2 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM ",
            $tags,
            " WHERE t.value = CAST($2 AS TEXT))) ",
            "AND c.live >= $3 ",
            "ORDER BY c.live DESC, c.viewers DESC, u.username LIMIT $4"
        )
    };
}

const CHANNEL: &str = select_channels!("WHERE c.username_lower = $1");
const CHANNELS_SQLITE: &str = list_channels!("json_each(c.tags) AS t");
const CHANNELS_POSTGRES: &str =
    list_channels!("json_array_elements_text(CAST(c.tags AS json)) AS t(value)");

/// A row of `open360_users`.
#[derive(sqlx::FromRow)]
struct UserRow {
    username: String,
    password_hash: String,
    stream_key: Option<String>,
    created_at_ms: i64,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            username: row.username,
            password_hash: row.password_hash,
            stream_key: row.stream_key,
            created_at_ms: row.created_at_ms,
        }
    }
}

/// A row of `open360_channels`, with its owner's display name.
#[derive(sqlx::FromRow)]
struct ChannelRow {
    username: String,
    title: String,
    description: String,
    tags: String,
    directory: String,
    live: i64,
    stream_id: Option<String>,
    live_since_ms: i64,
    viewers: i64,
    viewers_seq: i64,
    total_views: i64,
}

impl TryFrom<ChannelRow> for Channel {
    type Error = sqlx::Error;

    fn try_from(row: ChannelRow) -> Result<Self, sqlx::Error> {
        let tags = serde_json::from_str(&row.tags).map_err(|e| sqlx::Error::Decode(e.into()))?;
        let live = match row.live {
            2 => LiveState::Online,
            1 => LiveState::Lurking,
            _ => LiveState::Offline,
        };
        Ok(Self {
            username: row.username,
            settings: ChannelSettings {
                title: row.title,
                description: row.description,
                tags,
                directory: row.directory,
            },
            live,
            stream_id: row.stream_id,
            live_since_ms: row.live_since_ms,
            viewers: from_i64(row.viewers),
            viewers_seq: from_i64(row.viewers_seq),
            total_views: from_i64(row.total_views),
        })
    }
}

/// A row of `open360_vods`, with its owner's display name.
#[derive(sqlx::FromRow)]
struct VodRow {
    username: String,
    stream_id: String,
    started_at_ms: i64,
    duration_ms: i64,
    segments: i64,
}

impl From<VodRow> for Vod {
    fn from(row: VodRow) -> Self {
        Self {
            username: row.username,
            stream_id: row.stream_id,
            started_at_ms: row.started_at_ms,
            duration_ms: row.duration_ms,
            segments: row.segments,
        }
    }
}

/// `n` as a `BIGINT`, clamped.
fn to_i64<N: TryInto<i64>>(n: N) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// A stored `BIGINT` count: only clamped non-negative values are written.
fn from_i64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A unique violation, which the statements that raise it can only get from `stream_key`.
fn key_taken(error: sqlx::Error) -> WebStoreError {
    match &error {
        sqlx::Error::Database(database) if database.is_unique_violation() => {
            WebStoreError::KeyTaken
        }
        _ => WebStoreError::Database(error),
    }
}

fn configuration_error(message: String) -> WebStoreError {
    WebStoreError::Database(sqlx::Error::Configuration(message.into()))
}

impl SqlWebStore {
    /// Opens the database a URL names: `postgres://…` or `postgresql://…`, or SQLite at
    /// `sqlite://<path>` or `sqlite:<path>` (see [`open_sqlite`](Self::open_sqlite)). Any
    /// other URL, and an in-memory SQLite database (use
    /// [`MemoryWebStore`](super::MemoryWebStore)), is a configuration error.
    pub async fn open(url: &str) -> Result<Self, WebStoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            return Self::with_pool(Pool::Postgres(pool)).await;
        }
        let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return Err(configuration_error(format!(
                "unsupported database URL {url:?}: expected postgres://… or sqlite:…"
            )));
        };
        // Query options (`?mode=rwc`) are not part of the file's name.
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path.starts_with(":memory:") {
            return Err(configuration_error(format!(
                "no database file in {url:?} (for a store in memory, use MemoryWebStore)"
            )));
        }
        Self::open_sqlite(Path::new(path)).await
    }

    /// Opens the SQLite database at `path` in WAL mode, creating the file (and its directory)
    /// when missing.
    pub async fn open_sqlite(path: &Path) -> Result<Self, WebStoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(sqlx::Error::Io)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Commits survive a crash of the process; a power loss may take back the last few.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Self::with_pool(Pool::Sqlite(pool)).await
    }

    /// Which database the store is in: `"sqlite"` or `"postgres"` (for logs).
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Closes the pool, waiting for connections in use; for SQLite, this checkpoints the
    /// write-ahead log into the database file.
    pub async fn close(&self) {
        on_pool!(&self.pool, |pool| pool.close().await);
    }

    async fn with_pool(pool: Pool) -> Result<Self, WebStoreError> {
        match &pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                for statement in schema("") {
                    // Our own text, no outside input.
                    sqlx::query(sqlx::AssertSqlSafe(statement))
                        .execute(&mut *tx)
                        .await?;
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
                    sqlx::query(sqlx::AssertSqlSafe(statement))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(Self { pool })
    }
}

#[async_trait]
impl WebStore for SqlWebStore {
    async fn create_user(&self, user: &User) -> Result<(), WebStoreError> {
        let lower = user.username.to_ascii_lowercase();
        on_pool!(&self.pool, |pool| {
            let mut tx = pool.begin().await?;
            // `ON CONFLICT` settles racing sign-ups inside the database: the loser inserts no
            // row (on PostgreSQL, after waiting for the winner to commit).
            let inserted = sqlx::query(INSERT_USER)
                .bind(lower.clone())
                .bind(user.username.clone())
                .bind(user.password_hash.clone())
                .bind(user.stream_key.clone())
                .bind(user.created_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(key_taken)?
                .rows_affected();
            if inserted == 0 {
                return Err(WebStoreError::UsernameTaken);
            }
            sqlx::query(INSERT_CHANNEL)
                .bind(lower)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn user(&self, username: &str) -> Result<Option<User>, WebStoreError> {
        let row: Option<UserRow> = on_pool!(&self.pool, |pool| sqlx::query_as(USER)
            .bind(username.to_ascii_lowercase())
            .fetch_optional(pool)
            .await?);
        Ok(row.map(User::from))
    }

    async fn set_stream_key(&self, username: &str, key: &str) -> Result<(), WebStoreError> {
        let updated = on_pool!(&self.pool, |pool| sqlx::query(SET_KEY)
            .bind(key.to_owned())
            .bind(username.to_ascii_lowercase())
            .execute(pool)
            .await
            .map_err(key_taken)?
            .rows_affected());
        found(updated, username)
    }

    async fn user_by_stream_key(&self, key: &str) -> Result<Option<String>, WebStoreError> {
        Ok(on_pool!(&self.pool, |pool| sqlx::query_scalar(USER_BY_KEY)
            .bind(key.to_owned())
            .fetch_optional(pool)
            .await?))
    }

    async fn channel(&self, username: &str) -> Result<Option<Channel>, WebStoreError> {
        let row: Option<ChannelRow> = on_pool!(&self.pool, |pool| sqlx::query_as(CHANNEL)
            .bind(username.to_ascii_lowercase())
            .fetch_optional(pool)
            .await?);
        Ok(row.map(Channel::try_from).transpose()?)
    }

    async fn update_settings(
        &self,
        username: &str,
        settings: &ChannelSettings,
    ) -> Result<(), WebStoreError> {
        let tags =
            serde_json::to_string(&settings.tags).map_err(|e| sqlx::Error::Encode(e.into()))?;
        let updated = on_pool!(&self.pool, |pool| sqlx::query(UPDATE_SETTINGS)
            .bind(settings.title.clone())
            .bind(settings.description.clone())
            .bind(tags)
            .bind(settings.directory.clone())
            .bind(username.to_ascii_lowercase())
            .execute(pool)
            .await?
            .rows_affected());
        found(updated, username)
    }

    async fn set_live(
        &self,
        username: &str,
        live: LiveState,
        stream_id: Option<&str>,
        at_ms: i64,
    ) -> Result<(), WebStoreError> {
        let updated = on_pool!(&self.pool, |pool| sqlx::query(SET_LIVE)
            .bind(rank(live))
            .bind(stream_id.map(str::to_owned))
            .bind(at_ms)
            .bind(username.to_ascii_lowercase())
            .execute(pool)
            .await?
            .rows_affected());
        found(updated, username)
    }

    async fn set_viewers(
        &self,
        username: &str,
        count: u64,
        seq: u64,
    ) -> Result<bool, WebStoreError> {
        // One statement: the comparison and the write cannot be split by a racing count.
        let updated = on_pool!(&self.pool, |pool| sqlx::query(SET_VIEWERS)
            .bind(to_i64(count))
            .bind(to_i64(seq))
            .bind(username.to_ascii_lowercase())
            .execute(pool)
            .await?
            .rows_affected());
        Ok(updated > 0)
    }

    async fn increment_views(&self, username: &str) -> Result<(), WebStoreError> {
        on_pool!(&self.pool, |pool| sqlx::query(INCREMENT_VIEWS)
            .bind(username.to_ascii_lowercase())
            .execute(pool)
            .await
            .map(|_| ())?);
        Ok(())
    }

    async fn channels(&self, query: &ChannelQuery) -> Result<Vec<Channel>, WebStoreError> {
        let min_rank = if query.live_only {
            rank(LiveState::Lurking)
        } else {
            rank(LiveState::Offline)
        };
        let sql = match self.pool {
            Pool::Sqlite(_) => CHANNELS_SQLITE,
            Pool::Postgres(_) => CHANNELS_POSTGRES,
        };
        let rows: Vec<ChannelRow> = on_pool!(&self.pool, |pool| sqlx::query_as(sql)
            .bind(query.directory.clone())
            .bind(query.tag.clone())
            .bind(min_rank)
            .bind(to_i64(query.limit))
            .fetch_all(pool)
            .await?);
        Ok(rows
            .into_iter()
            .map(Channel::try_from)
            .collect::<Result<_, _>>()?)
    }

    async fn add_vod(&self, vod: &Vod) -> Result<(), WebStoreError> {
        // The `SELECT` from the users finds nothing for an unknown user: no row, no VOD.
        let written = on_pool!(&self.pool, |pool| sqlx::query(ADD_VOD)
            .bind(vod.username.to_ascii_lowercase())
            .bind(vod.stream_id.clone())
            .bind(vod.started_at_ms)
            .bind(vod.duration_ms)
            .bind(vod.segments)
            .execute(pool)
            .await?
            .rows_affected());
        if written == 0 {
            return Err(WebStoreError::NoUser(vod.username.clone()));
        }
        Ok(())
    }

    async fn vods(&self, username: &str, limit: usize) -> Result<Vec<Vod>, WebStoreError> {
        let rows: Vec<VodRow> = on_pool!(&self.pool, |pool| sqlx::query_as(VODS)
            .bind(username.to_ascii_lowercase())
            .bind(to_i64(limit))
            .fetch_all(pool)
            .await?);
        Ok(rows.into_iter().map(Vod::from).collect())
    }
}

/// `Ok` when an update touched the user's row, `NoUser` when there was none.
fn found(updated: u64, username: &str) -> Result<(), WebStoreError> {
    if updated == 0 {
        return Err(WebStoreError::NoUser(username.to_owned()));
    }
    Ok(())
}
