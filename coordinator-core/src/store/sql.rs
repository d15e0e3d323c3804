//! The SQL stores: SQLite (one file, the default) and PostgreSQL. The statements are the same
//! for both (`$N` parameters, `ON CONFLICT DO NOTHING`); only the pool differs.

use super::{Change, QueuedEvent, Store, StoreError, event_id};
use crate::proto::StreamEvent;
use async_trait::async_trait;
use sqlx::{
    PgPool, Row, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use std::{path::Path, time::Duration};

/// A [`Store`] in SQLite or PostgreSQL. Tables are created when missing; their names start
/// with `coordinator_`, so the database can be shared with the application.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Pool,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The tables, the same for both databases but for the outbox's sequence column.
fn schema(seq_column: &str) -> [String; 3] {
    [
        format!(
            "CREATE TABLE IF NOT EXISTS coordinator_outbox (
                seq {seq_column},
                event_id TEXT NOT NULL UNIQUE,
                event_type TEXT NOT NULL,
                channel TEXT NOT NULL,
                stream_id TEXT NOT NULL,
                stream_type TEXT NOT NULL,
                resolution TEXT NOT NULL,
                index_file TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                due_ms BIGINT NOT NULL)"
        ),
        "CREATE INDEX IF NOT EXISTS coordinator_outbox_stream
            ON coordinator_outbox (stream_id, seq)"
            .to_owned(),
        "CREATE TABLE IF NOT EXISTS coordinator_streams (
            stream_id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            started_ms BIGINT NOT NULL)"
            .to_owned(),
    ]
}

const INSERT_EVENT: &str = "INSERT INTO coordinator_outbox
    (event_id, event_type, channel, stream_id, stream_type, resolution, index_file, attempts, due_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)
    ON CONFLICT (event_id) DO NOTHING";
const REMEMBER_STREAM: &str = "INSERT INTO coordinator_streams (stream_id, channel, started_ms)
    VALUES ($1, $2, $3) ON CONFLICT (stream_id) DO NOTHING";
const FORGET_STREAM: &str = "DELETE FROM coordinator_streams WHERE stream_id = $1";
const DUE: &str = "SELECT seq, event_id, event_type, channel, stream_id, stream_type, resolution,
        index_file, attempts, due_ms
    FROM coordinator_outbox o
    WHERE due_ms <= $1 AND NOT EXISTS (
        SELECT 1 FROM coordinator_outbox older
        WHERE older.stream_id = o.stream_id AND older.seq < o.seq)
    ORDER BY seq LIMIT $2";

/// Runs `$body` with `$executor` bound to whichever pool this store has: one statement text,
/// two drivers.
macro_rules! on_pool {
    ($pool:expr, |$executor:ident| $body:expr) => {
        match $pool {
            Pool::Sqlite(pool) => {
                let $executor = pool;
                $body
            }
            Pool::Postgres(pool) => {
                let $executor = pool;
                $body
            }
        }
    };
}

/// Binds an event's columns to [`INSERT_EVENT`].
macro_rules! insert_event {
    ($event:expr, $now_ms:expr) => {{
        let row = EventRow::of($event);
        sqlx::query(INSERT_EVENT)
            .bind(event_id($event))
            .bind(row.event_type)
            .bind(row.channel.to_owned())
            .bind(row.stream_id.to_owned())
            .bind(row.stream_type.to_owned())
            .bind(row.resolution.to_owned())
            .bind(row.index_file.to_owned())
            .bind($now_ms)
    }};
}

/// Applies changes in one transaction.
macro_rules! record_in {
    ($pool:expr, $changes:expr, $now_ms:expr) => {{
        let mut tx = $pool.begin().await?;
        for change in $changes {
            match change {
                Change::StreamStarted { channel, stream_id } => {
                    sqlx::query(REMEMBER_STREAM)
                        .bind(stream_id.clone())
                        .bind(channel.clone())
                        .bind($now_ms)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Event(event) => {
                    insert_event!(event, $now_ms).execute(&mut *tx).await?;
                    if let StreamEvent::Closed { stream_id, .. } = event {
                        sqlx::query(FORGET_STREAM)
                            .bind(stream_id.clone())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
        }
        tx.commit().await?;
    }};
}

/// Reads a row of [`DUE`].
macro_rules! queued_event {
    ($row:expr) => {{
        let row = $row;
        let event_type: String = row.try_get("event_type")?;
        let channel: String = row.try_get("channel")?;
        let stream_id: String = row.try_get("stream_id")?;
        let event = if event_type == "stream-closed" {
            StreamEvent::Closed { channel, stream_id }
        } else {
            StreamEvent::Available {
                channel,
                stream_id,
                stream_type: row.try_get("stream_type")?,
                resolution: row.try_get("resolution")?,
                index_file: row.try_get("index_file")?,
            }
        };
        let attempts: i32 = row.try_get("attempts")?;
        QueuedEvent {
            seq: row.try_get("seq")?,
            event_id: row.try_get("event_id")?,
            event,
            attempts: u32::try_from(attempts).unwrap_or(0),
            due_ms: row.try_get("due_ms")?,
        }
    }};
}

struct EventRow<'a> {
    event_type: &'static str,
    channel: &'a str,
    stream_id: &'a str,
    stream_type: &'a str,
    resolution: &'a str,
    index_file: &'a str,
}

impl<'a> EventRow<'a> {
    fn of(event: &'a StreamEvent) -> Self {
        match event {
            StreamEvent::Available {
                channel,
                stream_id,
                stream_type,
                resolution,
                index_file,
            } => Self {
                event_type: "stream-available",
                channel,
                stream_id,
                stream_type,
                resolution,
                index_file,
            },
            StreamEvent::Closed { channel, stream_id } => Self {
                event_type: "stream-closed",
                channel,
                stream_id,
                stream_type: "",
                resolution: "",
                index_file: "",
            },
        }
    }
}

impl SqlStore {
    /// Opens (creating if missing) the SQLite database at `path`, in WAL mode.
    pub async fn sqlite(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Committed rows survive a crash of the process; only a power loss can take back
            // the last commits (WAL with synchronous=NORMAL), for one fsync per checkpoint
            // instead of one per event.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Self::with_pool(Pool::Sqlite(pool)).await
    }

    /// Connects to PostgreSQL at `url`.
    pub async fn postgres(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Self::with_pool(Pool::Postgres(pool)).await
    }

    /// Opens the store a URL names: `postgres://…`/`postgresql://…`, or `sqlite://<path>` (or a
    /// bare path) for SQLite.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::postgres(url).await;
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        // Keep query options (`?mode=…`) out of the file name.
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return Err(StoreError(sqlx::Error::Configuration(
                format!("no database file in {url:?}").into(),
            )));
        }
        Self::sqlite(path).await
    }

    async fn with_pool(pool: Pool) -> Result<Self, StoreError> {
        let seq_column = match &pool {
            Pool::Sqlite(_) => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Pool::Postgres(_) => "BIGSERIAL PRIMARY KEY",
        };
        for statement in schema(seq_column) {
            // Our own text, with our own column type in it: no outside input.
            let statement = sqlx::AssertSqlSafe(statement);
            on_pool!(&pool, |p| {
                sqlx::query(statement).execute(p).await?;
            });
        }
        Ok(Self { pool })
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn record(&self, changes: &[Change], now_ms: i64) -> Result<(), StoreError> {
        if !changes.is_empty() {
            on_pool!(&self.pool, |pool| record_in!(pool, changes, now_ms));
        }
        Ok(())
    }

    async fn close_remembered_streams(&self, now_ms: i64) -> Result<usize, StoreError> {
        let sql = "SELECT stream_id, channel FROM coordinator_streams ORDER BY stream_id";
        let streams: Vec<(String, String)> = on_pool!(&self.pool, |pool| sqlx::query_as(sql)
            .fetch_all(pool)
            .await?);
        let closes: Vec<Change> = streams
            .iter()
            .map(|(stream_id, channel)| {
                Change::Event(StreamEvent::Closed {
                    channel: channel.clone(),
                    stream_id: stream_id.clone(),
                })
            })
            .collect();
        self.record(&closes, now_ms).await?;
        Ok(streams.len())
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<QueuedEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let events = on_pool!(&self.pool, |pool| {
            let rows = sqlx::query(DUE)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                events.push(queued_event!(row));
            }
            events
        });
        Ok(events)
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let sql = "SELECT MIN(due_ms) FROM coordinator_outbox";
        let due: Option<i64> = on_pool!(&self.pool, |pool| sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await?);
        Ok(due)
    }

    async fn delivered(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let sql = "DELETE FROM coordinator_outbox WHERE seq = $1";
        if seqs.is_empty() {
            return Ok(());
        }
        on_pool!(&self.pool, |pool| {
            let mut tx = pool.begin().await?;
            for seq in seqs {
                sqlx::query(sql).bind(*seq).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    async fn retry_at(&self, seq: i64, attempts: u32, due_ms: i64) -> Result<(), StoreError> {
        let sql = "UPDATE coordinator_outbox SET attempts = $1, due_ms = $2 WHERE seq = $3";
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        on_pool!(&self.pool, |pool| {
            sqlx::query(sql)
                .bind(attempts)
                .bind(due_ms)
                .bind(seq)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    async fn queued(&self) -> Result<usize, StoreError> {
        let sql = "SELECT COUNT(*) FROM coordinator_outbox";
        let count: i64 = on_pool!(&self.pool, |pool| sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await?);
        Ok(usize::try_from(count).unwrap_or(0))
    }
}
