//! camus-signaling's room store conformance suite against the real PostgreSQL.

use camus_signaling::store::{SqlStore, Store, StoredRoom, conformance};
use harness::{PgSchema, peer};

#[tokio::test]
async fn the_postgres_store_passes_the_conformance_suite() {
    let Some(schema) = peer(PgSchema::create().await) else {
        return;
    };
    let store = SqlStore::open(schema.url()).await.expect("opened");
    assert_eq!(store.backend(), "postgres");
    conformance::run(&store).await;
    store.close().await;
    schema.drop_schema().await.expect("dropped");
}

#[tokio::test]
async fn servers_opening_one_database_at_once_share_its_rooms() {
    let Some(schema) = peer(PgSchema::create().await) else {
        return;
    };
    // Two servers starting together: schema creation is serialised, neither fails.
    let (first, second) = tokio::join!(SqlStore::open(schema.url()), SqlStore::open(schema.url()));
    let (first, second) = (first.expect("opened"), second.expect("opened"));
    first
        .create_room(&StoredRoom::new("shared", "Shared", 1_000))
        .await
        .expect("created");
    let seen = second.room("shared").await.expect("read").expect("shared");
    assert_eq!(seen.name, "Shared");
    // Reopening finds the table there already.
    let third = SqlStore::open(schema.url()).await.expect("reopened");
    assert_eq!(third.room_count().await.expect("counted"), 1);
    for store in [first, second, third] {
        store.close().await;
    }
    schema.drop_schema().await.expect("dropped");
}
