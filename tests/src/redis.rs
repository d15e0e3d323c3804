//! A fresh Redis key prefix per test, whose keys are deleted afterwards.
//!
//! The server is `$TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). Code under test that takes
//! a key prefix (or a channel prefix for pub/sub) gets [`RedisPrefix::prefix`], so tests running
//! in parallel on one server never see each other's keys.

use crate::error::{HarnessError, PeerMissing, Result};
use redis::aio::MultiplexedConnection;
use std::time::Duration;

const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A key prefix of its own for one test.
pub struct RedisPrefix {
    url: String,
    prefix: String,
    client: redis::Client,
    cleaned: bool,
}

impl RedisPrefix {
    /// Checks that the test server answers `PING` and picks a random prefix `test:<hex>:`.
    pub async fn create() -> Result<Self> {
        let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let client = redis::Client::open(url.as_str())?;
        let mut connection =
            match tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection())
                .await
            {
                Ok(Ok(connection)) => connection,
                Ok(Err(error)) => return Err(missing(&url, &error.to_string())),
                Err(_) => return Err(missing(&url, "no answer within 5 s")),
            };
        let pong: String = redis::cmd("PING").query_async(&mut connection).await?;
        if pong != "PONG" {
            return Err(HarnessError::Protocol {
                peer: "Redis",
                detail: format!("PING answered {pong:?}"),
            });
        }
        let prefix = format!("test:{:016x}:", rand::random::<u64>());
        Ok(Self {
            url,
            prefix,
            client,
            cleaned: false,
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The prefix every key (and channel) of this test starts with, e.g. `test:5f…:`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix><name>`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A new connection to the server.
    pub async fn connection(&self) -> Result<MultiplexedConnection> {
        Ok(self.client.get_multiplexed_async_connection().await?)
    }

    /// Deletes every key under the prefix now; returns how many there were.
    pub async fn clean(mut self) -> Result<usize> {
        self.cleaned = true;
        delete_prefixed(&self.client, &self.prefix).await
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let (client, prefix) = (self.client.clone(), self.prefix.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(delete_prefixed(&client, &prefix))
                .map(drop)
                .map_err(std::io::Error::other)
        });
        if let Ok(Err(error)) = cleanup.join() {
            eprintln!("could not delete test keys {}*: {error}", self.prefix);
        }
    }
}

async fn delete_prefixed(client: &redis::Client, prefix: &str) -> Result<usize> {
    let mut connection = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{prefix}*");
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(&mut connection)
            .await?;
        if !keys.is_empty() {
            let removed: usize = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut connection)
                .await?;
            deleted += removed;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

fn missing(url: &str, why: &str) -> HarnessError {
    HarnessError::PeerMissing(PeerMissing {
        peer: "Redis",
        reason: format!("cannot connect to {url}: {why}"),
        hint: "scripts/test starts an installed redis-server; or set TEST_REDIS_URL",
    })
}
