//! The hub's log of relayed messages: memory, SQLite or PostgreSQL, newest first, bounded.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::{PgPool, Row as _, SqlitePool, sqlite::SqliteConnectOptions};
use std::{
    collections::VecDeque,
    path::Path,
    sync::{Mutex, PoisonError},
};

/// One relayed message, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedMessage {
    /// When the hub relayed it, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The sending service's label.
    pub from: String,
    /// The target's label.
    pub target: String,
    /// `message` or `question`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The package's prompt.
    pub prompt: String,
    /// The package's `message`, if any.
    pub message: Option<String>,
}

/// A log store failed.
#[derive(Debug, thiserror::Error)]
#[error("message log: {0}")]
pub struct LogError(#[from] sqlx::Error);

/// Where the hub keeps its log.
#[async_trait]
pub trait MessageLog: Send + Sync + 'static {
    /// Appends `messages`, in order, then drops all but the newest `keep`.
    async fn append(&self, messages: &[LoggedMessage], keep: usize) -> Result<(), LogError>;
    /// The newest `limit` messages, newest first, to `target` only when given.
    async fn newest(
        &self,
        target: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LoggedMessage>, LogError>;
}

/// The log in memory: gone with the process.
#[derive(Debug, Default)]
pub struct MemoryLog(Mutex<VecDeque<LoggedMessage>>);

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl MessageLog for MemoryLog {
    async fn append(&self, messages: &[LoggedMessage], keep: usize) -> Result<(), LogError> {
        let mut log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        log.extend(messages.iter().cloned());
        let excess = log.len().saturating_sub(keep);
        log.drain(..excess);
        Ok(())
    }

    async fn newest(
        &self,
        target: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LoggedMessage>, LogError> {
        let log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(log
            .iter()
            .rev()
            .filter(|m| target.is_none_or(|t| m.target == t))
            .take(limit)
            .cloned()
            .collect())
    }
}

/// The log in SQLite or PostgreSQL (table `open360_messages`, created when missing).
#[derive(Debug, Clone)]
pub enum SqlLog {
    /// SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

macro_rules! on_pool {
    ($log:expr, |$pool:ident| $body:expr) => {
        match $log {
            SqlLog::Sqlite($pool) => $body,
            SqlLog::Postgres($pool) => $body,
        }
    };
}

impl SqlLog {
    /// Opens `postgres://…`, or SQLite at `sqlite://<path>` (or a bare path), creating the
    /// database file and table when missing.
    pub async fn open(url: &str) -> Result<Self, LogError> {
        let log = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres(PgPool::connect(url).await?)
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let options = SqliteConnectOptions::new()
                .filename(Path::new(path))
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
            Self::Sqlite(SqlitePool::connect_with(options).await?)
        };
        let id = match log {
            Self::Sqlite(_) => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Self::Postgres(_) => "BIGSERIAL PRIMARY KEY",
        };
        let create = format!(
            "CREATE TABLE IF NOT EXISTS open360_messages (
                id {id},
                at_ms BIGINT NOT NULL,
                sender TEXT NOT NULL,
                target TEXT NOT NULL,
                kind TEXT NOT NULL,
                prompt TEXT NOT NULL,
                message TEXT)"
        );
        let index = "CREATE INDEX IF NOT EXISTS open360_messages_target
            ON open360_messages (target, id)";
        on_pool!(&log, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(create))
                .execute(pool)
                .await?;
            sqlx::query(index).execute(pool).await?;
        });
        Ok(log)
    }
}

#[async_trait]
impl MessageLog for SqlLog {
    async fn append(&self, messages: &[LoggedMessage], keep: usize) -> Result<(), LogError> {
        let insert = "INSERT INTO open360_messages (at_ms, sender, target, kind, prompt, message)
            VALUES ($1, $2, $3, $4, $5, $6)";
        let prune =
            "DELETE FROM open360_messages WHERE id <= (SELECT MAX(id) FROM open360_messages) - $1";
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for m in messages {
                sqlx::query(insert)
                    .bind(m.at_ms)
                    .bind(m.from.clone())
                    .bind(m.target.clone())
                    .bind(m.kind.clone())
                    .bind(m.prompt.clone())
                    .bind(m.message.clone())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(prune).bind(keep).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn newest(
        &self,
        target: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LoggedMessage>, LogError> {
        let sql = "SELECT at_ms, sender, target, kind, prompt, message FROM open360_messages
            WHERE (CAST($1 AS TEXT) IS NULL OR target = CAST($1 AS TEXT)) ORDER BY id DESC LIMIT $2";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(target.map(str::to_owned))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(LoggedMessage {
                    at_ms: row.try_get("at_ms")?,
                    from: row.try_get("sender")?,
                    target: row.try_get("target")?,
                    kind: row.try_get("kind")?,
                    prompt: row.try_get("prompt")?,
                    message: row.try_get("message")?,
                });
            }
            Ok(out)
        })
    }
}

/// The behaviour every [`MessageLog`] must have. Panics on the first failure.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance {
    use super::{LoggedMessage, MessageLog};

    fn logged(n: i64, target: &str) -> LoggedMessage {
        LoggedMessage {
            at_ms: 1_700_000_000_000 + n,
            from: "ingest-api".into(),
            target: target.into(),
            kind: "question".into(),
            prompt: format!("p{n}"),
            message: (n % 2 == 0).then(|| format!("m{n}")),
        }
    }

    /// Runs every check on an empty `log`.
    pub async fn run(log: &dyn MessageLog) {
        assert!(log.newest(None, 10).await.expect("read").is_empty());
        let first: Vec<_> = (0..3).map(|n| logged(n, "web-api")).collect();
        log.append(&first, 100).await.expect("appended");
        log.append(&[logged(3, "chat-api")], 100)
            .await
            .expect("appended");
        let newest = log.newest(None, 10).await.expect("read");
        let prompts: Vec<_> = newest.iter().map(|m| m.prompt.as_str()).collect();
        assert_eq!(prompts, ["p3", "p2", "p1", "p0"], "newest first");
        assert_eq!(newest[1], logged(2, "web-api"), "every field kept");
        assert_eq!(newest[2].message, None);
        let web = log.newest(Some("web-api"), 2).await.expect("read");
        let prompts: Vec<_> = web.iter().map(|m| m.prompt.as_str()).collect();
        assert_eq!(prompts, ["p2", "p1"], "by target, limited");
        assert!(
            log.newest(Some("nobody"), 5)
                .await
                .expect("read")
                .is_empty()
        );

        // Retention: only the newest are kept.
        let more: Vec<_> = (4..10).map(|n| logged(n, "web-api")).collect();
        log.append(&more, 5).await.expect("appended");
        let kept = log.newest(None, 100).await.expect("read");
        let prompts: Vec<_> = kept.iter().map(|m| m.prompt.as_str()).collect();
        assert_eq!(prompts, ["p9", "p8", "p7", "p6", "p5"]);
    }

    #[cfg(test)]
    mod suites {
        use crate::log::{MemoryLog, SqlLog};

        #[tokio::test]
        async fn memory_log() {
            super::run(&MemoryLog::new()).await;
        }

        #[tokio::test]
        async fn sqlite_log() {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("hub.sqlite3").display());
            super::run(&SqlLog::open(&url).await.expect("opened")).await;
        }
    }
}
