//! castaway-relay's livestream store conformance suite against the real PostgreSQL.

use castaway_relay::store::{SqlStore, conformance};
use harness::{PgSchema, peer};

#[tokio::test]
async fn the_postgres_store_passes_the_conformance_suite() {
    let Some(schema) = peer(PgSchema::create().await) else {
        return;
    };
    let store = SqlStore::open(schema.url()).await.expect("opened");
    conformance::run(&store).await;
    schema.drop_schema().await.expect("dropped");
}
