//! A fresh PostgreSQL schema per test, dropped afterwards.
//!
//! The server is `$TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`, this
//! machine kind's trust-auth server). Each [`PgSchema`] creates `test_<random>`; its pool and its
//! [`PgSchema::url`] put that schema first on the `search_path`, so code under test that only
//! takes a URL lands in it too.

use crate::error::{HarnessError, PeerMissing, Result};
use sqlx::{
    AssertSqlSafe, ConnectOptions, Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use std::time::Duration;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A schema of its own for one test; dropped (with everything in it) by [`PgSchema::drop_schema`],
/// or when the value is dropped.
pub struct PgSchema {
    name: String,
    server_url: String,
    url: String,
    pool: PgPool,
    dropped: bool,
}

impl PgSchema {
    /// Creates a schema with a random name on the test server.
    pub async fn create() -> Result<Self> {
        let server_url =
            std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let options: PgConnectOptions = server_url.parse()?;
        let mut admin = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return Err(missing(&server_url, &error.to_string())),
            Err(_) => return Err(missing(&server_url, "no answer within 5 s")),
        };
        let name = format!("test_{:016x}", rand::random::<u64>());
        // The name is ours (`test_` + hex), never outside input.
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;

        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options.options([("search_path", name.as_str())]))
            .await?;
        let separator = if server_url.contains('?') { '&' } else { '?' };
        let url = format!("{server_url}{separator}options=-c%20search_path%3D{name}");
        Ok(Self {
            name,
            server_url,
            url,
            pool,
            dropped: false,
        })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection URL whose `search_path` is this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool whose connections use this schema.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Drops the schema and everything in it now.
    pub async fn drop_schema(mut self) -> Result<()> {
        self.dropped = true;
        self.pool.close().await;
        drop_schema(&self.server_url, &self.name).await
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop cannot await, and the test's runtime may be shutting down: clean up on a thread of
        // our own with a runtime of its own.
        let (url, name) = (self.server_url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(drop_schema(&url, &name))
                .map_err(std::io::Error::other)
        });
        if let Ok(Err(error)) = cleanup.join() {
            eprintln!("could not drop test schema {}: {error}", self.name);
        }
    }
}

async fn drop_schema(server_url: &str, name: &str) -> Result<()> {
    let mut admin = PgConnection::connect(server_url).await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {name} CASCADE"
    )))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

fn missing(url: &str, why: &str) -> HarnessError {
    HarnessError::PeerMissing(PeerMissing {
        peer: "PostgreSQL",
        reason: format!("cannot connect to {url}: {why}"),
        hint: "scripts/test starts an installed PostgreSQL; or set TEST_DATABASE_URL",
    })
}
