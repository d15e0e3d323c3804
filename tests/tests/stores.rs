//! Per-test PostgreSQL schemas and Redis key prefixes against the real servers.

use harness::{PgSchema, RedisPrefix, peer};
use sqlx::{Connection, PgConnection, Row};

async fn schema_exists(name: &str) -> bool {
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = PgConnection::connect(&url).await.expect("connected");
    let row = sqlx::query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .expect("queried");
    row.get::<i64, _>("n") == 1
}

#[tokio::test]
async fn each_test_gets_a_schema_of_its_own_that_is_dropped_afterwards() {
    let Some(first) = peer(PgSchema::create().await) else {
        return;
    };
    let Some(second) = peer(PgSchema::create().await) else {
        return;
    };
    assert_ne!(first.name(), second.name());

    sqlx::query("CREATE TABLE rooms (slug TEXT PRIMARY KEY)")
        .execute(first.pool())
        .await
        .expect("created");
    sqlx::query("INSERT INTO rooms VALUES ('excellent-adventure')")
        .execute(first.pool())
        .await
        .expect("inserted");
    let visible = |pool: &sqlx::PgPool| {
        let pool = pool.clone();
        async move {
            let row = sqlx::query("SELECT to_regclass('rooms') IS NOT NULL AS visible")
                .fetch_one(&pool)
                .await;
            row.expect("queried").get::<bool, _>("visible")
        }
    };
    assert!(visible(first.pool()).await);
    assert!(
        !visible(second.pool()).await,
        "the second schema sees the first one's table"
    );

    // Code that only gets the URL lands in the same schema.
    let mut by_url = PgConnection::connect(first.url())
        .await
        .expect("connected by URL");
    let slug: String = sqlx::query("SELECT slug FROM rooms")
        .fetch_one(&mut by_url)
        .await
        .expect("read")
        .get("slug");
    assert_eq!(slug, "excellent-adventure");
    by_url.close().await.expect("closed");

    let (first_name, second_name) = (first.name().to_owned(), second.name().to_owned());
    first.drop_schema().await.expect("dropped");
    assert!(!schema_exists(&first_name).await);
    drop(second);
    assert!(
        !schema_exists(&second_name).await,
        "dropping the value drops the schema"
    );
}

#[tokio::test]
async fn each_test_gets_a_key_prefix_of_its_own_that_is_cleaned_afterwards() {
    let Some(first) = peer(RedisPrefix::create().await) else {
        return;
    };
    let Some(second) = peer(RedisPrefix::create().await) else {
        return;
    };
    assert_ne!(first.prefix(), second.prefix());
    assert!(first.key("viewers").starts_with(first.prefix()));

    let mut redis = first.connection().await.expect("connected");
    for key in [
        first.key("viewers"),
        first.key("members"),
        second.key("viewers"),
    ] {
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .query_async(&mut redis)
            .await
            .expect("set");
    }
    let second_key = second.key("viewers");
    assert_eq!(first.clean().await.expect("cleaned"), 2);
    let left: i64 = redis::cmd("EXISTS")
        .arg(&second_key)
        .query_async(&mut redis)
        .await
        .expect("checked");
    assert_eq!(left, 1, "cleaning one prefix touched another");

    drop(second);
    let left: i64 = redis::cmd("EXISTS")
        .arg(&second_key)
        .query_async(&mut redis)
        .await
        .expect("checked");
    assert_eq!(left, 0, "dropping the value deletes its keys");
}
