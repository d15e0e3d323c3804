//! coordinator-core's store conformance suite against the real PostgreSQL.

use coordinator_core::store::{SqlStore, Store, conformance};
use harness::{PgSchema, peer};

#[tokio::test]
async fn the_postgres_store_passes_the_conformance_suite() {
    let Some(schema) = peer(PgSchema::create().await) else {
        return;
    };
    let store = SqlStore::open(schema.url()).await.expect("opened");
    conformance::run(&store).await;
    // Opening again finds the tables in place and the outbox empty.
    let again = SqlStore::postgres(schema.url()).await.expect("reopened");
    assert_eq!(again.queued().await.expect("counted"), 0);
    schema.drop_schema().await.expect("dropped");
}
